/* placeholder: being written */
#include "harness.h"
int main(void) { test_skip("not written yet"); }
