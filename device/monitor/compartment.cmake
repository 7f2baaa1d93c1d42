# The security event log (device/monitor/events.c), a library the monitor links, and its unit
# test. Included from the top-level CMakeLists.txt.
pkg_check_modules(RP_C_CMOCKA REQUIRED IMPORTED_TARGET cmocka)
add_library(rampart_events STATIC device/monitor/events.c)
target_include_directories(rampart_events PUBLIC device/monitor)
target_link_libraries(rampart_events PUBLIC rampart_host)

add_executable(test_events tests/unit/test_events.c)
target_link_libraries(test_events PRIVATE rampart_events PkgConfig::RP_C_CMOCKA)
set_target_properties(test_events PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
add_test(NAME unit.events COMMAND test_events)
set_tests_properties(unit.events PROPERTIES LABELS unit)
