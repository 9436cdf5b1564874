#include "test_vectors.h"

@inputs@
@expected@
@classes@
