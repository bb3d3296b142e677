%% tools/erlang/echo-server.erl: the Erlang expression ./tandem demo and the echo tests boot
%% (beam.smp -noshell -eval). A gen_tcp server on port 5555: one Erlang process per
%% connection sends back every byte it receives until the peer closes. DURATION_MS (replaced by
%% tools/erlang.sh --echo-server) stops the runtime after that many milliseconds; 0 serves
%% until the machine is stopped.
Duration = DURATION_MS,
{ok, L} = gen_tcp:listen(5555, [binary, {packet, raw}, {active, false}, {reuseaddr, true}, {backlog, 128}]),
io:format("tandem: Erlang echo server listening on port 5555 (~p schedulers)~n", [erlang:system_info(schedulers_online)]),
Duration > 0 andalso spawn(fun() -> timer:sleep(Duration), io:format("tandem: echo server stops after ~p ms~n", [Duration]), halt(0) end),
Echo = fun E(S) -> case gen_tcp:recv(S, 0) of {ok, D} -> ok = gen_tcp:send(S, D), E(S); _ -> gen_tcp:close(S) end end,
Accept = fun A() -> {ok, S} = gen_tcp:accept(L), P = spawn(fun() -> receive go -> Echo(S) end end), ok = gen_tcp:controlling_process(S, P), P ! go, A() end,
Accept().
