/* placeholder */
int bench_placeholder(void);
int bench_placeholder(void) { return 0; }
