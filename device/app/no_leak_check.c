/*
 * Linked only into apps built with the sanitizers (make asan) that run in a compartment: its
 * seccomp allow-list refuses ptrace, which LeakSanitizer's check at exit needs, so the check would
 * fail the app (and record a refused ptrace). AddressSanitizer and UBSan stay on.
 */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "detect_leaks=0";
}
