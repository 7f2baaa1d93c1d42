# The app compartment and the security event log (device/monitor/compartment.c, events.c),
# libraries the monitor links; their unit test, and the compartment test driver
# (tests/tools/compartment-run.c, built into build/tests: a test tool, not a product command).
# Included from the top-level CMakeLists.txt.
pkg_check_modules(RP_C_CMOCKA REQUIRED IMPORTED_TARGET cmocka)
pkg_check_modules(SECCOMP REQUIRED IMPORTED_TARGET libseccomp)

add_library(rampart_events STATIC device/monitor/events.c)
target_include_directories(rampart_events PUBLIC device/monitor)
target_link_libraries(rampart_events PUBLIC rampart_host)

# The kernel's refusals read with no capability (reader.h): the parsers of their hostile bytes
# (audit.c: Landlock's audit records; packet.c: the refused packets' headers), which only
# `rampart-unpack read` links, never the monitor; the record both sides speak (reader.c: the
# reader's encoder, the supervisor's checked decoder); their unit tests, and their fuzz targets
# (fuzz/CMakeLists.txt).
add_library(rampart_audit STATIC device/monitor/audit.c device/monitor/packet.c)
target_include_directories(rampart_audit PUBLIC device/monitor)
target_link_libraries(rampart_audit PUBLIC rampart_events rampart_host)
add_library(rampart_reader_record STATIC device/monitor/reader.c)
target_include_directories(rampart_reader_record PUBLIC device/monitor)
target_link_libraries(rampart_reader_record PUBLIC rampart_events rampart_host)

add_executable(test_audit tests/unit/test_audit.c)
target_link_libraries(test_audit PRIVATE rampart_audit PkgConfig::RP_C_CMOCKA)
set_target_properties(test_audit PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
add_test(NAME unit.audit COMMAND test_audit)
set_tests_properties(unit.audit PROPERTIES LABELS unit)

# The record's decoder and the supervisor's side (evreader.c: the domains' mapping, a reader that
# dies restarted), against a real `rampart-unpack read`.
add_executable(test_reader tests/unit/test_reader.c)
target_link_libraries(test_reader PRIVATE rampart_monitor PkgConfig::RP_C_CMOCKA)
target_compile_definitions(test_reader PRIVATE RP_TEST_UNPACK="$<TARGET_FILE:rampart-unpack>")
add_dependencies(test_reader rampart-unpack)
set_target_properties(test_reader PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
add_test(NAME unit.reader COMMAND test_reader)
set_tests_properties(unit.reader PROPERTIES LABELS unit)

# The monitor's check of rampart-launcher's file and directory (compartment.c).
add_executable(test_launcher_open tests/unit/test_launcher_open.c)
target_link_libraries(test_launcher_open PRIVATE rampart_monitor PkgConfig::RP_C_CMOCKA)
set_target_properties(test_launcher_open PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
add_test(NAME unit.launcher_open COMMAND test_launcher_open)
set_tests_properties(unit.launcher_open PROPERTIES LABELS unit)

# The compartment's seccomp filters (device/launcher/filter.c), each loaded in a child and tried.
add_executable(test_launcher_filter tests/unit/test_launcher_filter.c device/launcher/filter.c)
target_include_directories(test_launcher_filter PRIVATE device/launcher)
target_link_libraries(test_launcher_filter PRIVATE rampart_launch rampart_seccomp
                      PkgConfig::RP_C_CMOCKA)
set_target_properties(test_launcher_filter PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
add_test(NAME unit.launcher_filter COMMAND test_launcher_filter)
set_tests_properties(unit.launcher_filter PROPERTIES LABELS unit)

# The bucket that bounds the writes of an app's log (device/launcher/lograte.c), its clock driven.
add_executable(test_lograte tests/unit/test_lograte.c device/launcher/lograte.c)
target_include_directories(test_lograte PRIVATE device/launcher device/agent)
target_link_libraries(test_lograte PRIVATE rampart_launch PkgConfig::RP_C_CMOCKA)
set_target_properties(test_lograte PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
add_test(NAME unit.lograte COMMAND test_lograte)
set_tests_properties(unit.lograte PROPERTIES LABELS unit)

# The launcher's reports as the monitor takes them (launch.c).
add_executable(test_launch tests/unit/test_launch.c)
target_link_libraries(test_launch PRIVATE rampart_launch PkgConfig::RP_C_CMOCKA)
set_target_properties(test_launch PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
add_test(NAME unit.launch COMMAND test_launch)
set_tests_properties(unit.launch PROPERTIES LABELS unit)

# app.c: the ready rule of the app contract has one owner, shared with the agent.
# The crash store (crash.c: the init's encoding, S/crashes/) and its reader (crash_parse.c: the
# agent's; the monitor never calls it, so it is never linked into it).
add_library(rampart_crash STATIC device/monitor/crash.c device/monitor/crash_parse.c)
target_include_directories(rampart_crash PUBLIC device/monitor)
target_link_libraries(rampart_crash PUBLIC rampart_monitor_proto rampart_host)

# The monitor <-> rampart-launcher protocol (launch.h): both sides link it.
add_library(rampart_launch STATIC device/monitor/launch.c)
target_include_directories(rampart_launch PUBLIC device/monitor)
target_link_libraries(rampart_launch PUBLIC rampart_host)

add_library(rampart_compartment STATIC device/monitor/compartment.c device/agent/app.c)
target_include_directories(rampart_compartment PUBLIC device/monitor device/agent)
target_link_libraries(rampart_compartment PUBLIC rampart_launch rampart_events rampart_seccomp
                      rampart_crash rampart_host PkgConfig::SECCOMP)

add_executable(test_events tests/unit/test_events.c)
target_link_libraries(test_events PRIVATE rampart_events PkgConfig::RP_C_CMOCKA)
set_target_properties(test_events PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
add_test(NAME unit.events COMMAND test_events)
set_tests_properties(unit.events PROPERTIES LABELS unit)

add_executable(test_crash tests/unit/test_crash.c)
target_link_libraries(test_crash PRIVATE rampart_crash PkgConfig::RP_C_CMOCKA)
set_target_properties(test_crash PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
add_test(NAME unit.crash COMMAND test_crash)
set_tests_properties(unit.crash PROPERTIES LABELS unit)

add_executable(test_cgroup tests/unit/test_cgroup.c)
target_link_libraries(test_cgroup PRIVATE rampart_compartment PkgConfig::RP_C_CMOCKA)
set_target_properties(test_cgroup PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
add_test(NAME unit.cgroup COMMAND test_cgroup)
set_tests_properties(unit.cgroup PROPERTIES LABELS unit)

add_executable(compartment-run tests/tools/compartment-run.c tests/tools/gate-local.c)
# the network policy as its net_setup hook (rampart_netpolicy: device/monitor/netpolicy.cmake);
# --channel serves the app channel (appchan.c: rampart_broker; its gate: rampart_monitor)
target_include_directories(compartment-run PRIVATE tests/tools)
target_link_libraries(compartment-run PRIVATE rampart_compartment rampart_netpolicy rampart_monitor
                      rampart_broker)
# its allowed names resolved by rampart-unpack, as the monitor's are (rp_unpack_resolve)
target_compile_definitions(compartment-run PRIVATE RP_TEST_UNPACK="$<TARGET_FILE:rampart-unpack>")
add_dependencies(compartment-run rampart-unpack)
# rampart-launcher from the build (the monitor finds it beside itself; this is in tests/)
target_compile_definitions(compartment-run PRIVATE
                           RP_LAUNCHER_PATH="$<TARGET_FILE:rampart-launcher>")
add_dependencies(compartment-run rampart-launcher)
set_target_properties(compartment-run PROPERTIES RUNTIME_OUTPUT_DIRECTORY
                                                 ${CMAKE_BINARY_DIR}/tests)
add_test(NAME e2e.compartment COMMAND ${CMAKE_SOURCE_DIR}/tests/e2e/compartment.sh)
set_tests_properties(e2e.compartment PROPERTIES
  LABELS "e2e;gcc_only"
  TIMEOUT 300
  ENVIRONMENT "COMPARTMENT_RUN=$<TARGET_FILE:compartment-run>;AGENT=$<TARGET_FILE:rampart-agent>")

# What Landlock logs of an app: its compartment's refusals, not those of domains it nests (root;
# audit turned on for the run if it is off: host-wide, so with the monitors' tests' lock).
add_test(NAME e2e.landlock_log COMMAND ${CMAKE_SOURCE_DIR}/tests/e2e/landlock-log.sh)
set_tests_properties(e2e.landlock_log PROPERTIES
  LABELS e2e
  TIMEOUT 120
  ENVIRONMENT "COMPARTMENT_RUN=$<TARGET_FILE:compartment-run>"
  RESOURCE_LOCK rampart_nftables)

# What a compartment costs an app at start (`make bench`).
add_executable(bench-app-start bench/app-start.c)
target_link_libraries(bench-app-start PRIVATE rampart_compartment)
target_compile_definitions(bench-app-start PRIVATE
                           RP_LAUNCHER_PATH="$<TARGET_FILE:rampart-launcher>")
add_dependencies(bench-app-start rampart-launcher)
set_target_properties(bench-app-start PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bin)
# The benchmarks still run (their figures are for `make bench`, never asserted here).
add_test(NAME e2e.bench_app_start_runs COMMAND bench-app-start --rounds 2)
set_tests_properties(e2e.bench_app_start_runs PROPERTIES LABELS "e2e;gcc_only" TIMEOUT 120)
add_test(NAME e2e.bench_footprint_runs COMMAND ${CMAKE_SOURCE_DIR}/bench/footprint.sh
                                               ${CMAKE_BINARY_DIR}/bin)
# It starts rampart-monitor, whose app supervisor binds the host's NFLOG group and owns the table
# inet rampart: one at a time with the other tests that do.
set_tests_properties(e2e.bench_footprint_runs PROPERTIES LABELS "e2e;gcc_only" TIMEOUT 120
                     RESOURCE_LOCK rampart_nftables)
