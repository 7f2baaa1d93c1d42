# The per-app network policy (device/monitor/netpolicy.c) and its tests. Included from the
# top-level CMakeLists.txt after tests/, so that it can add tests of its own.
pkg_check_modules(RP_NFTABLES REQUIRED IMPORTED_TARGET libnftables)
pkg_check_modules(RP_NFLOG REQUIRED IMPORTED_TARGET libnetfilter_log)
pkg_check_modules(RP_NLROUTE REQUIRED IMPORTED_TARGET libnl-route-3.0)

add_library(rampart_netpolicy STATIC ${CMAKE_CURRENT_LIST_DIR}/netpolicy.c)
target_include_directories(rampart_netpolicy PUBLIC ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(rampart_netpolicy PUBLIC rampart_events rampart_host PkgConfig::RP_NFTABLES
                      PkgConfig::RP_NFLOG PkgConfig::RP_NLROUTE)

set(RP_NP_TESTS ${CMAKE_SOURCE_DIR}/tests)

# The event reasons of refused packets (no privileges needed).
pkg_check_modules(RP_NP_CMOCKA REQUIRED IMPORTED_TARGET cmocka)
add_executable(test_netpolicy ${RP_NP_TESTS}/unit/test_netpolicy.c)
target_link_libraries(test_netpolicy PRIVATE rampart_netpolicy rampart_audit rampart_launch
                      PkgConfig::RP_NP_CMOCKA)
set_target_properties(test_netpolicy PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
add_test(NAME unit.netpolicy COMMAND test_netpolicy)
set_tests_properties(unit.netpolicy PROPERTIES LABELS unit)

# The policy end to end, in a small internet of network namespaces (root).
add_executable(netpolicy-driver ${RP_NP_TESTS}/tools/netpolicy_driver.c)
# its names resolved by rampart-unpack as the monitor's are (rp_unpack_resolve: rampart_monitor)
target_link_libraries(netpolicy-driver PRIVATE rampart_netpolicy rampart_monitor resolv)
target_compile_definitions(netpolicy-driver PRIVATE RP_TEST_UNPACK="$<TARGET_FILE:rampart-unpack>")
add_dependencies(netpolicy-driver rampart-unpack)
set_target_properties(netpolicy-driver PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
add_test(NAME e2e.netpolicy COMMAND ${RP_NP_TESTS}/e2e/netpolicy.sh)
set_tests_properties(e2e.netpolicy PROPERTIES
  LABELS "e2e;gcc_only"
  TIMEOUT 300
  ENVIRONMENT "DRIVER=$<TARGET_FILE:netpolicy-driver>;UNPACK=$<TARGET_FILE:rampart-unpack>"
  RESOURCE_LOCK rampart_nftables) # one owner at a time of the host's table inet rampart
