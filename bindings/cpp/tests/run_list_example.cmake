# SPDX-License-Identifier: MIT
# run_list_example.cmake -- run the list example twice on one pool: the
# second run must print the first run's elements behind its own.
string(RANDOM LENGTH 12 tag)
set(pool /dev/shm/vp-list-example-${tag}.pool)
execute_process(COMMAND ${LIST} ${pool} 1 2 3 RESULT_VARIABLE rc1 OUTPUT_VARIABLE out1)
execute_process(COMMAND ${LIST} ${pool} 4 RESULT_VARIABLE rc2 OUTPUT_VARIABLE out2)
file(REMOVE ${pool})
string(STRIP "${out2}" out2)
if(NOT rc1 EQUAL 0 OR NOT rc2 EQUAL 0 OR NOT out2 STREQUAL "4 3 2 1")
  message(FATAL_ERROR "list example: rc ${rc1}/${rc2}, second run printed '${out2}', want '4 3 2 1'")
endif()
message(STATUS "second run printed: ${out2}")
