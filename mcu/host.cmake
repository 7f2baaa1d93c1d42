# The microcontroller build inside the host build (build/mcu), for its end-to-end test
# (e2e.mcu_boot): the same mcu/ project `make mcu` builds into build-mcu/, cross-compiled over
# Mbed TLS's source from scripts/install-deps. Not in the sanitizer or fuzzing builds.
if(NOT RP_SANITIZE AND NOT RP_FUZZ)
  execute_process(COMMAND ${CMAKE_SOURCE_DIR}/scripts/install-deps --mbedtls-dir
                  OUTPUT_VARIABLE RP_MBEDTLS_SRC OUTPUT_STRIP_TRAILING_WHITESPACE)
  find_program(RP_ARM_GCC arm-none-eabi-gcc)
  if(RP_ARM_GCC AND EXISTS "${RP_MBEDTLS_SRC}/library/sha256.c")
    include(ExternalProject)
    ExternalProject_Add(rampart_mcu
      SOURCE_DIR ${CMAKE_SOURCE_DIR}/mcu
      BINARY_DIR ${CMAKE_BINARY_DIR}/mcu
      CMAKE_ARGS -DCMAKE_TOOLCHAIN_FILE=${CMAKE_SOURCE_DIR}/mcu/toolchain-arm-none-eabi.cmake
                 -DCMAKE_BUILD_TYPE=MinSizeRel -DMBEDTLS_SRC=${RP_MBEDTLS_SRC}
      BUILD_ALWAYS ON
      INSTALL_COMMAND "")
  else()
    message(WARNING "no arm-none-eabi-gcc or no Mbed TLS source (run scripts/install-deps): "
                    "build/mcu is not built and e2e.mcu_boot will fail")
  endif()
  # The development key as the tests use it: a copy only its owner can read, since `rampart`
  # refuses a private key that others can read (a checkout leaves it 0644).
  file(COPY ${CMAKE_SOURCE_DIR}/mcu/keys/ DESTINATION ${CMAKE_BINARY_DIR}/mcu-keys
       FILE_PERMISSIONS OWNER_READ OWNER_WRITE)
  add_test(NAME e2e.mcu_boot COMMAND ${CMAKE_SOURCE_DIR}/tests/e2e/mcu-boot.sh)
  set_tests_properties(e2e.mcu_boot PROPERTIES
    LABELS "e2e;gcc_only"
    TIMEOUT 120
    ENVIRONMENT "RAMPART=$<TARGET_FILE:rampart>;MCU_BUILD=${CMAKE_BINARY_DIR}/mcu;MCU_RUN=${CMAKE_SOURCE_DIR}/scripts/mcu-run;MCU_KEYS=${CMAKE_BINARY_DIR}/mcu-keys;EAT_CHECK=$<TARGET_FILE:eat-check>")
  # Upgrades and power cuts (docs/mcu.md): its own test, so it runs beside e2e.mcu_boot.
  add_test(NAME e2e.mcu_upgrade COMMAND ${CMAKE_SOURCE_DIR}/tests/e2e/mcu-upgrade.sh)
  set_tests_properties(e2e.mcu_upgrade PROPERTIES
    LABELS "e2e;gcc_only"
    TIMEOUT 240
    ENVIRONMENT "RAMPART=$<TARGET_FILE:rampart>;MCU_BUILD=${CMAKE_BINARY_DIR}/mcu;MCU_RUN=${CMAKE_SOURCE_DIR}/scripts/mcu-run;MCU_KEYS=${CMAKE_BINARY_DIR}/mcu-keys")
  # make prove: Frama-C's Eva over the boot stage's verification path (mcu/prove/run.sh), no alarm
  # but those listed in mcu/prove/alarms.expected. About 7 s of CPU.
  add_test(NAME prove.eva COMMAND ${CMAKE_SOURCE_DIR}/mcu/prove/run.sh)
  set_tests_properties(prove.eva PROPERTIES LABELS "prove;gcc_only" TIMEOUT 300)
  # The Linux relay: the board attests to a real rampart-server (scripts/mcu-relay).
  add_test(NAME e2e.mcu_attest COMMAND ${CMAKE_SOURCE_DIR}/tests/e2e/mcu-attest.sh)
  set_tests_properties(e2e.mcu_attest PROPERTIES
    LABELS "e2e;gcc_only"
    TIMEOUT 120
    ENVIRONMENT "RAMPART=$<TARGET_FILE:rampart>;RAMPART_SERVER=$<TARGET_FILE:rampart-server>;MCU_BUILD=${CMAKE_BINARY_DIR}/mcu;MCU_RUN=${CMAKE_SOURCE_DIR}/scripts/mcu-run;MCU_KEYS=${CMAKE_BINARY_DIR}/mcu-keys")
  # MCU firmware deployed through the update path: a real server and agent beside the board.
  add_test(NAME e2e.mcu_deploy COMMAND ${CMAKE_SOURCE_DIR}/tests/e2e/mcu-deploy.sh)
  set_tests_properties(e2e.mcu_deploy PROPERTIES
    LABELS "e2e;gcc_only"
    TIMEOUT 120
    ENVIRONMENT "RAMPART=$<TARGET_FILE:rampart>;RAMPART_SERVER=$<TARGET_FILE:rampart-server>;AGENT=$<TARGET_FILE:rampart-agent>;MCU_BUILD=${CMAKE_BINARY_DIR}/mcu;MCU_RUN=${CMAKE_SOURCE_DIR}/scripts/mcu-run;MCU_KEYS=${CMAKE_BINARY_DIR}/mcu-keys")
  # The same deployments on a device under rampart-monitor (root; the agent as its own user): the
  # monitor hands the trial to the agent, which relays it and gives the board's verdict.
  add_test(NAME e2e.mcu_deploy_monitor COMMAND ${CMAKE_SOURCE_DIR}/tests/e2e/mcu-deploy.sh)
  set_tests_properties(e2e.mcu_deploy_monitor PROPERTIES
    LABELS "e2e;gcc_only"
    TIMEOUT 180
    ENVIRONMENT "RAMPART=$<TARGET_FILE:rampart>;RAMPART_SERVER=$<TARGET_FILE:rampart-server>;AGENT=$<TARGET_FILE:rampart-agent>;MONITOR=$<TARGET_FILE:rampart-monitor>;MONITOR_CALL=$<TARGET_FILE:monitor-call>;MCU_BUILD=${CMAKE_BINARY_DIR}/mcu;MCU_RUN=${CMAKE_SOURCE_DIR}/scripts/mcu-run;MCU_KEYS=${CMAKE_BINARY_DIR}/mcu-keys"
    RESOURCE_LOCK rampart_nftables) # its monitor's app supervisor owns the NFLOG group and the table
endif()
