// Linux errno values (x86-64). The only place where they become negative numbers is the
// syscall dispatcher.
#pragma once

#include "core/lib/types.h"

namespace tandem {

enum class Errno : i32 {
  kEPERM = 1, kENOENT = 2, kESRCH = 3, kEINTR = 4, kEIO = 5, kENXIO = 6, kE2BIG = 7, kENOEXEC = 8,
  kEBADF = 9, kECHILD = 10, kEAGAIN = 11, kENOMEM = 12, kEACCES = 13, kEFAULT = 14, kENOTBLK = 15,
  kEBUSY = 16, kEEXIST = 17, kEXDEV = 18, kENODEV = 19, kENOTDIR = 20, kEISDIR = 21, kEINVAL = 22,
  kENFILE = 23, kEMFILE = 24, kENOTTY = 25, kETXTBSY = 26, kEFBIG = 27, kENOSPC = 28, kESPIPE = 29,
  kEROFS = 30, kEMLINK = 31, kEPIPE = 32, kEDOM = 33, kERANGE = 34, kEDEADLK = 35, kENAMETOOLONG = 36,
  kENOLCK = 37, kENOSYS = 38, kENOTEMPTY = 39, kELOOP = 40, kENOMSG = 42, kENODATA = 61,
  kEOVERFLOW = 75, kENOTSOCK = 88, kEDESTADDRREQ = 89, kEMSGSIZE = 90, kEPROTOTYPE = 91,
  kENOPROTOOPT = 92, kEPROTONOSUPPORT = 93, kESOCKTNOSUPPORT = 94, kEOPNOTSUPP = 95, kEAFNOSUPPORT = 97, kEADDRINUSE = 98,
  kEADDRNOTAVAIL = 99, kENETDOWN = 100, kENETUNREACH = 101, kECONNABORTED = 103, kECONNRESET = 104,
  kENOBUFS = 105, kEISCONN = 106, kENOTCONN = 107, kETOOMANYREFS = 109, kETIMEDOUT = 110, kECONNREFUSED = 111,
  kEHOSTUNREACH = 113, kEALREADY = 114, kEINPROGRESS = 115,
  // Kernel-internal: a syscall interrupted by a signal that may be restarted (SA_RESTART).
  kERESTARTSYS = 512,
};

const char* errno_name(Errno e);

}  // namespace tandem
