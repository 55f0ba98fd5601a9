// Nothing to define: the header declares functions libFuzzer and the C core provide.
// SwiftPM needs one source file for the target to exist.
#include "FuzzHooks.h"
