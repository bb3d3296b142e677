// Exits with status 42, which the runner must pass through.
int main(void) { return 42; }
