/* tiny: a small shared library for the untrusted-file tests to map (its name and what
 * replaces it on disk are what matter). */
int tiny_answer(void) { return 42; }
