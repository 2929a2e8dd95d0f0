# SPDX-License-Identifier: MIT
# expect_compile_error.cmake -- compile SRC and pass only when compilation
# fails with a message matching EXPECT (so an unrelated error cannot pass).
execute_process(
  COMMAND ${CXX} -std=c++17 -fsyntax-only -I${INC} ${SRC}
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(rc EQUAL 0)
  message(FATAL_ERROR "${SRC} compiled, but it must be rejected")
endif()
if(NOT err MATCHES "${EXPECT}")
  message(FATAL_ERROR "${SRC} failed for another reason:\n${err}")
endif()
message(STATUS "rejected as expected: ${EXPECT}")
