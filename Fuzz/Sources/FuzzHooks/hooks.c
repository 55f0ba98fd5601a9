// Nothing to define: the header declares a function libFuzzer provides.
// SwiftPM needs one source file for the target to exist.
#include "FuzzHooks.h"
