/* memcached_answers.h - requests and memcached 1.6.18's answers to them.
 *
 * Each entry was sent on a fresh connection to a stock `memcached -U 0`
 * (after a flush_all) and its answer recorded byte for byte; the same
 * bytes fed to atoll-kv's engine (one shard, fresh stores) gave the same
 * answer. CAS uniques are atoll-kv's (memcached's come from a global
 * counter); `closes` marks answers after which memcached closed the
 * connection. The answers atoll-kv gives on purpose differently are in
 * kv_proto.c (deviations[]), with kv.h saying why.
 *
 * Included by tests/kv/kv_proto.c only.
 */
static const struct proto_case memcached_answers[] = {
	{ "mn\r\n",
	  "MN\r\n" },
	{ "mx foo\r\n",
	  "ERROR\r\n" },
	{ "get\r\n",
	  "ERROR\r\n" },
	{ "\r\n",
	  "ERROR\r\n" },
	{ "g\r\n",
	  "ERROR\r\n" },
	{ "shutdown\r\n",
	  "ERROR: shutdown not enabled\r\n" },
	{ "verbosity\r\n",
	  "ERROR\r\n" },
	{ "verbosity 1\r\n",
	  "OK\r\n" },
	{ "verbosity x\r\n",
	  "CLIENT_ERROR bad command line format\r\n" },
	{ "set a 0 0 1\r\n"
	  "ab\r\n"
	  "get a\r\n",
	  "CLIENT_ERROR bad data chunk\r\n"
	  "ERROR\r\n"
	  "END\r\n" },
	{ "set a 0 0 1 noreply\r\n"
	  "ab\r\n"
	  "get a\r\n",
	  "ERROR\r\n"
	  "END\r\n" },
	{ "set a 4294967296 0 1\r\n"
	  "b\r\n"
	  "gets a\r\n",
	  "STORED\r\n"
	  "VALUE a 0 1 1\r\n"
	  "b\r\n"
	  "END\r\n" },
	{ "set a -1 0 1\r\n"
	  "b\r\n"
	  "gets a\r\n",
	  "CLIENT_ERROR bad command line format\r\n"
	  "ERROR\r\n"
	  "END\r\n" },
	{ "set a 0 99999999999 1\r\n"
	  "b\r\n"
	  "get a\r\n",
	  "STORED\r\n"
	  "END\r\n" },
	{ "set a 0 0 -1\r\n"
	  "b\r\n"
	  "get a\r\n",
	  "CLIENT_ERROR bad command line format\r\n"
	  "ERROR\r\n"
	  "END\r\n" },
	{ "GET / HTTP/1.1\r\n",
	  "", true },
	{ "set n 5 0 3\r\n"
	  "100\r\n"
	  "decr n 1\r\n"
	  "get n\r\n"
	  "incr n 1\r\n"
	  "get n\r\n"
	  "incr n 18446744073709551615\r\n"
	  "get n\r\n",
	  "STORED\r\n"
	  "99\r\n"
	  "VALUE n 5 3\r\n"
	  "99 \r\n"
	  "END\r\n"
	  "100\r\n"
	  "VALUE n 5 3\r\n"
	  "100\r\n"
	  "END\r\n"
	  "99\r\n"
	  "VALUE n 5 3\r\n"
	  "99 \r\n"
	  "END\r\n" },
	{ "set n 5 0 2\r\n"
	  "10\r\n"
	  "incr n 95\r\n"
	  "gets n\r\n",
	  "STORED\r\n"
	  "105\r\n"
	  "VALUE n 5 3 2\r\n"
	  "105\r\n"
	  "END\r\n" },
	{ "set n 5 0 2\r\n"
	  "10\r\n"
	  "decr n 95\r\n"
	  "decr n -1\r\n"
	  "decr n abc\r\n"
	  "decr n 18446744073709551616\r\n"
	  "decr n 1a\r\n"
	  "incr nn 1\r\n"
	  "incr n\r\n"
	  "incr n 1 2\r\n"
	  "incr n 1 noreply\r\n"
	  "get n\r\n",
	  "STORED\r\n"
	  "0\r\n"
	  "CLIENT_ERROR invalid numeric delta argument\r\n"
	  "CLIENT_ERROR invalid numeric delta argument\r\n"
	  "CLIENT_ERROR invalid numeric delta argument\r\n"
	  "CLIENT_ERROR invalid numeric delta argument\r\n"
	  "NOT_FOUND\r\n"
	  "ERROR\r\n"
	  "1\r\n"
	  "VALUE n 5 2\r\n"
	  "2 \r\n"
	  "END\r\n" },
	{ "set n 5 0 3\r\n"
	  " 12\r\n"
	  "incr n 1\r\n"
	  "set n 0 0 3\r\n"
	  "12a\r\n"
	  "incr n 1\r\n"
	  "set n 0 0 0\r\n"
	  "\r\n"
	  "incr n 1\r\n"
	  "set n 0 0 2\r\n"
	  "-1\r\n"
	  "incr n 1\r\n"
	  "set n 0 0 2\r\n"
	  "-0\r\n"
	  "incr n 1\r\n"
	  "set n 0 0 20\r\n"
	  "18446744073709551616\r\n"
	  "incr n 1\r\n",
	  "STORED\r\n"
	  "13\r\n"
	  "STORED\r\n"
	  "CLIENT_ERROR cannot increment or decrement non-numeric v"
	  "alue\r\n"
	  "STORED\r\n"
	  "CLIENT_ERROR cannot increment or decrement non-numeric v"
	  "alue\r\n"
	  "STORED\r\n"
	  "CLIENT_ERROR cannot increment or decrement non-numeric v"
	  "alue\r\n"
	  "STORED\r\n"
	  "1\r\n"
	  "STORED\r\n"
	  "CLIENT_ERROR cannot increment or decrement non-numeric v"
	  "alue\r\n" },
	{ "set n 0 0 20\r\n"
	  "18446744073709551615\r\n"
	  "incr n 2\r\n"
	  "get n\r\n",
	  "STORED\r\n"
	  "1\r\n"
	  "VALUE n 0 20\r\n"
	  "1                   \r\n"
	  "END\r\n" },
	{ "set n 0 0 3\r\n"
	  "+12\r\n"
	  "incr n 1\r\n"
	  "set n 0 0 4\r\n"
	  "12\x09""5\r\n"
	  "incr n 1\r\n",
	  "STORED\r\n"
	  "13\r\n"
	  "STORED\r\n"
	  "13\r\n" },
	{ "incr n +5\r\n"
	  "incr n  5\r\n"
	  "incr n 5\x09""\r\n",
	  "NOT_FOUND\r\n"
	  "NOT_FOUND\r\n"
	  "NOT_FOUND\r\n" },
	{ "cas q 0 0 1 1\r\n"
	  "x\r\n"
	  "gets q\r\n"
	  "set q 0 0 1\r\n"
	  "x\r\n"
	  "gets q\r\n"
	  "cas q 0 0 1 999\r\n"
	  "y\r\n"
	  "cas q 0 0 1 abc\r\n"
	  "y\r\n"
	  "cas q 0 0 1\r\n"
	  "y\r\n",
	  "NOT_FOUND\r\n"
	  "END\r\n"
	  "STORED\r\n"
	  "VALUE q 0 1 1\r\n"
	  "x\r\n"
	  "END\r\n"
	  "EXISTS\r\n"
	  "CLIENT_ERROR bad command line format\r\n"
	  "ERROR\r\n"
	  "ERROR\r\n"
	  "ERROR\r\n" },
	{ "set q 0 0 1\r\n"
	  "x\r\n"
	  "gets q\r\n",
	  "STORED\r\n"
	  "VALUE q 0 1 1\r\n"
	  "x\r\n"
	  "END\r\n" },
	{ "delete q\r\n"
	  "delete q\r\n"
	  "delete q 0\r\n"
	  "delete q 5\r\n"
	  "delete q noreply\r\n"
	  "delete q 0 noreply\r\n"
	  "delete q 0 x\r\n"
	  "delete\r\n"
	  "delete a b c d\r\n",
	  "NOT_FOUND\r\n"
	  "NOT_FOUND\r\n"
	  "NOT_FOUND\r\n"
	  "CLIENT_ERROR bad command line format.  Usage: delete <ke"
	  "y> [noreply]\r\n"
	  "CLIENT_ERROR bad command line format.  Usage: delete <ke"
	  "y> [noreply]\r\n"
	  "ERROR\r\n"
	  "ERROR\r\n" },
	{ "set q 0 0 1\r\n"
	  "x\r\n"
	  "append q 0 0 2\r\n"
	  "yz\r\n"
	  "prepend q 0 0 2\r\n"
	  "ab\r\n"
	  "get q\r\n"
	  "append zz 0 0 1\r\n"
	  "x\r\n"
	  "prepend zz 0 0 1\r\n"
	  "x\r\n"
	  "add q 0 0 1\r\n"
	  "x\r\n"
	  "replace zz 0 0 1\r\n"
	  "x\r\n"
	  "add zz 0 0 1\r\n"
	  "x\r\n"
	  "replace zz 5 0 1\r\n"
	  "y\r\n"
	  "gets zz\r\n",
	  "STORED\r\n"
	  "STORED\r\n"
	  "STORED\r\n"
	  "VALUE q 0 5\r\n"
	  "abxyz\r\n"
	  "END\r\n"
	  "NOT_STORED\r\n"
	  "NOT_STORED\r\n"
	  "NOT_STORED\r\n"
	  "NOT_STORED\r\n"
	  "STORED\r\n"
	  "STORED\r\n"
	  "VALUE zz 5 1 5\r\n"
	  "y\r\n"
	  "END\r\n" },
	{ "set q 7 0 1\r\n"
	  "x\r\n"
	  "append q 9 0 2\r\n"
	  "yz\r\n"
	  "gets q\r\n",
	  "STORED\r\n"
	  "STORED\r\n"
	  "VALUE q 7 3 2\r\n"
	  "xyz\r\n"
	  "END\r\n" },
	{ "touch q 10\r\n"
	  "touch nope 10\r\n"
	  "touch q\r\n"
	  "touch q abc\r\n"
	  "touch q 10 noreply\r\n"
	  "gat 100 q zz nope\r\n"
	  "gats 100 q\r\n"
	  "gat q\r\n"
	  "gat abc q\r\n"
	  "gat 100\r\n",
	  "NOT_FOUND\r\n"
	  "NOT_FOUND\r\n"
	  "ERROR\r\n"
	  "CLIENT_ERROR invalid exptime argument\r\n"
	  "END\r\n"
	  "END\r\n"
	  "CLIENT_ERROR invalid exptime argument\r\n"
	  "CLIENT_ERROR invalid exptime argument\r\n"
	  "END\r\n" },
	{ "flush_all\r\n"
	  "flush_all 0\r\n"
	  "flush_all noreply\r\n"
	  "flush_all 10 noreply\r\n"
	  "flush_all abc\r\n"
	  "flush_all -1\r\n"
	  "flush_all 1 2 3\r\n"
	  "flush_all 0 0\r\n",
	  "OK\r\n"
	  "OK\r\n"
	  "CLIENT_ERROR invalid exptime argument\r\n"
	  "OK\r\n"
	  "ERROR\r\n"
	  "OK\r\n" },
	{ "get q\r\n",
	  "END\r\n" },
	{ "set\r\n"
	  "set a\r\n"
	  "set a 0\r\n"
	  "set a 0 0\r\n"
	  "set a 0 0 1 noreply extra\r\n"
	  "x\r\n"
	  "set a 0 0 1 garbage\r\n"
	  "x\r\n"
	  "get a\r\n",
	  "ERROR\r\n"
	  "ERROR\r\n"
	  "ERROR\r\n"
	  "ERROR\r\n"
	  "ERROR\r\n"
	  "ERROR\r\n"
	  "STORED\r\n"
	  "VALUE a 0 1\r\n"
	  "x\r\n"
	  "END\r\n" },
	{ "set a x 0 1\r\n"
	  "x\r\n"
	  "set a 0 x 1\r\n"
	  "x\r\n"
	  "set a 0 0 x\r\n"
	  "x\r\n"
	  "set a 0 0 1x\r\n"
	  "x\r\n",
	  "CLIENT_ERROR bad command line format\r\n"
	  "ERROR\r\n"
	  "CLIENT_ERROR bad command line format\r\n"
	  "ERROR\r\n"
	  "CLIENT_ERROR bad command line format\r\n"
	  "ERROR\r\n"
	  "CLIENT_ERROR bad command line format\r\n"
	  "ERROR\r\n" },
	{ "set a 0 -5 1\r\n"
	  "x\r\n"
	  "get a\r\n"
	  "set a 0 2592000 1\r\n"
	  "x\r\n"
	  "get a\r\n"
	  "set a 0 2592001 1\r\n"
	  "x\r\n"
	  "get a\r\n",
	  "STORED\r\n"
	  "END\r\n"
	  "STORED\r\n"
	  "VALUE a 0 1\r\n"
	  "x\r\n"
	  "END\r\n"
	  "STORED\r\n"
	  "END\r\n" },
	{ "set a 0 0 5\r\n"
	  "abc\r\n"
	  "\r\n"
	  "get a\r\n",
	  "STORED\r\n"
	  "VALUE a 0 5\r\n"
	  "abc\r\n"
	  "\r\n"
	  "END\r\n" },
	{ "set a 0 0 3\r\n"
	  "abcde\r\n"
	  "get a\r\n",
	  "CLIENT_ERROR bad data chunk\r\n"
	  "ERROR\r\n"
	  "END\r\n" },
	{ "set a 0 0 3\r\n"
	  "abc\n\r\n"
	  "get a\r\n",
	  "CLIENT_ERROR bad data chunk\r\n"
	  "ERROR\r\n"
	  "END\r\n" },
	{ "quit\r\n"
	  "get a\r\n",
	  "", true },
	{ "quit x\r\n",
	  "", true },
	{ "GET a\r\n",
	  "ERROR\r\n" },
	{ "gets\r\n",
	  "ERROR\r\n" },
	{ "incr\r\n",
	  "ERROR\r\n" },
	{ "set k 0 0 1 noreply\r\n"
	  "x\r\n"
	  "append k 0 0 1 noreply\r\n"
	  "y\r\n"
	  "prepend k 0 0 1 noreply\r\n"
	  "z\r\n"
	  "add k 0 0 1 noreply\r\n"
	  "z\r\n"
	  "replace k 0 0 1 noreply\r\n"
	  "r\r\n"
	  "cas k 0 0 1 1 noreply\r\n"
	  "z\r\n"
	  "incr k 1 noreply\r\n"
	  "touch k 1 noreply\r\n"
	  "get k\r\n",
	  "VALUE k 0 1\r\n"
	  "r\r\n"
	  "END\r\n" },
	{ "set a 0 0 1\r\n"
	  "x\r\n"
	  "set a 0 0 0\r\n"
	  "\r\n"
	  "get a\r\n",
	  "STORED\r\n"
	  "STORED\r\n"
	  "VALUE a 0 0\r\n"
	  "\r\n"
	  "END\r\n" },
	{ "set a 0 0 1\r\n"
	  "x\r\n"
	  "set a 0 0 2147483646\r\n",
	  "STORED\r\n"
	  "CLIENT_ERROR bad command line format\r\n" },
	{ "set a 0 0 2147483647\r\n",
	  "CLIENT_ERROR bad command line format\r\n" },
	{ "set a 0 0 2147483648\r\n",
	  "CLIENT_ERROR bad command line format\r\n" },
	{ "set a 0 0 00001\r\n"
	  "x\r\n"
	  "get a\r\n",
	  "STORED\r\n"
	  "VALUE a 0 1\r\n"
	  "x\r\n"
	  "END\r\n" },
	{ "set a 0 0 +1\r\n"
	  "x\r\n"
	  "get a\r\n",
	  "STORED\r\n"
	  "VALUE a 0 1\r\n"
	  "x\r\n"
	  "END\r\n" },
	{ "set a +5 -0 1\r\n"
	  "x\r\n"
	  "get a\r\n",
	  "STORED\r\n"
	  "VALUE a 5 1\r\n"
	  "x\r\n"
	  "END\r\n" },
	{ "set a 0 0 1\r\n"
	  "x\r\n"
	  "incr a 1\r\n"
	  "decr a 5\r\n"
	  "get a\r\n",
	  "STORED\r\n"
	  "CLIENT_ERROR cannot increment or decrement non-numeric v"
	  "alue\r\n"
	  "CLIENT_ERROR cannot increment or decrement non-numeric v"
	  "alue\r\n"
	  "VALUE a 0 1\r\n"
	  "x\r\n"
	  "END\r\n" },
	{ "set a 0 0 2\r\n"
	  "99\r\n"
	  "incr a 1\r\n"
	  "gets a\r\n"
	  "incr a 1\r\n"
	  "gets a\r\n",
	  "STORED\r\n"
	  "100\r\n"
	  "VALUE a 0 3 2\r\n"
	  "100\r\n"
	  "END\r\n"
	  "101\r\n"
	  "VALUE a 0 3 3\r\n"
	  "101\r\n"
	  "END\r\n" },
	{ "touch a -1\r\n"
	  "get a\r\n",
	  "NOT_FOUND\r\n"
	  "END\r\n" },
	{ "set a 0 0 4294967297\r\n"
	  "x\r\n"
	  "get a\r\n",
	  "STORED\r\n"
	  "VALUE a 0 1\r\n"
	  "x\r\n"
	  "END\r\n" },
	{ "set a 0 0 1\r\r\n"
	  "x\r\n"
	  "get a\r\n",
	  "STORED\r\n"
	  "VALUE a 0 1\r\n"
	  "x\r\n"
	  "END\r\n" },
	{ "set a 0 0 1\r\n"
	  "x\r\n"
	  "touch a 1 extra\r\n"
	  "incr a 1 extra\r\n",
	  "STORED\r\n"
	  "TOUCHED\r\n"
	  "CLIENT_ERROR cannot increment or decrement non-numeric v"
	  "alue\r\n" },
	{ "set a 0 0 1\r\n"
	  "x\r\n"
	  "set a 0 0 1\x09""\r\n"
	  "y\r\n"
	  "get a\r\n",
	  "STORED\r\n"
	  "STORED\r\n"
	  "VALUE a 0 1\r\n"
	  "y\r\n"
	  "END\r\n" },
	{ "set a 18446744073709551616 0 1\r\n"
	  "x\r\n",
	  "CLIENT_ERROR bad command line format\r\n"
	  "ERROR\r\n" },
	{ "set a -18446744073709551615 0 1\r\n"
	  "x\r\n"
	  "gets a\r\n",
	  "STORED\r\n"
	  "VALUE a 1 1 1\r\n"
	  "x\r\n"
	  "END\r\n" },
	{ "set a 0 9223372036854775808 1\r\n"
	  "x\r\n",
	  "CLIENT_ERROR bad command line format\r\n"
	  "ERROR\r\n" },
	{ "set a 0 -9223372036854775808 1\r\n"
	  "x\r\n"
	  "get a\r\n",
	  "STORED\r\n"
	  "VALUE a 0 1\r\n"
	  "x\r\n"
	  "END\r\n" },
	{ "get\x09""a\r\n",
	  "ERROR\r\n" },
	{ "\n",
	  "ERROR\r\n" },
	{ "\r\n",
	  "ERROR\r\n" },
	{ "a\r\n",
	  "ERROR\r\n" },
	{ "gat 10 kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"
	  "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"
	  "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"
	  "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"
	  "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk\r\n",
	  "CLIENT_ERROR bad command line format\r\n" },
	{ "mget a\r\n"
	  "bget a\r\n",
	  "ERROR\r\n"
	  "END\r\n" },
	{ "get a\r\n"
	  "quit\r\n"
	  "get a\r\n",
	  "END\r\n", true },
	{ "cas a 0 0 1 0\r\n"
	  "x\r\n",
	  "NOT_FOUND\r\n" },
	{ "set a 0 0 1\r\n"
	  "x\r\n"
	  "cas a 0 0 1 0\r\n"
	  "x\r\n",
	  "STORED\r\n"
	  "EXISTS\r\n" },
	{ "delete kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"
	  "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"
	  "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"
	  "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"
	  "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk\r\n"
	  "delete kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"
	  "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"
	  "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"
	  "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"
	  "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk 5\r\n",
	  "CLIENT_ERROR bad command line format\r\n"
	  "CLIENT_ERROR bad command line format.  Usage: delete <ke"
	  "y> [noreply]\r\n" },
	{ "incr kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"
	  "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"
	  "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"
	  "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"
	  "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk x\r\n",
	  "CLIENT_ERROR bad command line format\r\n" },
	{ "touch kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"
	  "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"
	  "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"
	  "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"
	  "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk x\r\n",
	  "CLIENT_ERROR bad command line format\r\n" },
	{ "set n 0 0 1\r\n"
	  "5\r\n"
	  "incr n 5 noreply\r\n"
	  "incr n x noreply\r\n"
	  "get n\r\n",
	  "STORED\r\n"
	  "VALUE n 0 2\r\n"
	  "10\r\n"
	  "END\r\n" },
	{ "flush_all 99999999999\r\n",
	  "OK\r\n" },
	{ "  \r\n",
	  "ERROR\r\n" },
	{ "verbosity 1 2\r\n"
	  "verbosity noreply\r\n"
	  "verbosity -1\r\n",
	  "OK\r\n"
	  "CLIENT_ERROR bad command line format\r\n" },
	{ "set a 0 0 1 \r\n"
	  "x\r\n"
	  "get a \r\n",
	  "STORED\r\n"
	  "VALUE a 0 1\r\n"
	  "x\r\n"
	  "END\r\n" },
	{ "set k0 0 0 1\r\n"
	  "0\r\n"
	  "set k1 0 0 1\r\n"
	  "1\r\n"
	  "set k2 0 0 1\r\n"
	  "2\r\n"
	  "set k3 0 0 1\r\n"
	  "3\r\n"
	  "set k4 0 0 1\r\n"
	  "4\r\n"
	  "set k5 0 0 1\r\n"
	  "5\r\n"
	  "set k6 0 0 1\r\n"
	  "6\r\n"
	  "set k7 0 0 1\r\n"
	  "7\r\n"
	  "set k8 0 0 1\r\n"
	  "8\r\n"
	  "set k9 0 0 1\r\n"
	  "9\r\n"
	  "set k10 0 0 2\r\n"
	  "10\r\n"
	  "set k11 0 0 2\r\n"
	  "11\r\n"
	  "set k12 0 0 2\r\n"
	  "12\r\n"
	  "set k13 0 0 2\r\n"
	  "13\r\n"
	  "set k14 0 0 2\r\n"
	  "14\r\n"
	  "set k15 0 0 2\r\n"
	  "15\r\n"
	  "set k16 0 0 2\r\n"
	  "16\r\n"
	  "set k17 0 0 2\r\n"
	  "17\r\n"
	  "set k18 0 0 2\r\n"
	  "18\r\n"
	  "set k19 0 0 2\r\n"
	  "19\r\n"
	  "set k20 0 0 2\r\n"
	  "20\r\n"
	  "set k21 0 0 2\r\n"
	  "21\r\n"
	  "set k22 0 0 2\r\n"
	  "22\r\n"
	  "set k23 0 0 2\r\n"
	  "23\r\n"
	  "set k24 0 0 2\r\n"
	  "24\r\n"
	  "set k25 0 0 2\r\n"
	  "25\r\n"
	  "set k26 0 0 2\r\n"
	  "26\r\n"
	  "set k27 0 0 2\r\n"
	  "27\r\n"
	  "set k28 0 0 2\r\n"
	  "28\r\n"
	  "set k29 0 0 2\r\n"
	  "29\r\n"
	  "gat 0 k0 k3 k6 k9 k12 k15 k18 k21 k24 k27 k30 k33 k36 k3"
	  "9 k42 k45 k48 k51 k54 k57\r\n"
	  "gats 0 k1 k2 k1\r\n",
	  "STORED\r\n"
	  "STORED\r\n"
	  "STORED\r\n"
	  "STORED\r\n"
	  "STORED\r\n"
	  "STORED\r\n"
	  "STORED\r\n"
	  "STORED\r\n"
	  "STORED\r\n"
	  "STORED\r\n"
	  "STORED\r\n"
	  "STORED\r\n"
	  "STORED\r\n"
	  "STORED\r\n"
	  "STORED\r\n"
	  "STORED\r\n"
	  "STORED\r\n"
	  "STORED\r\n"
	  "STORED\r\n"
	  "STORED\r\n"
	  "STORED\r\n"
	  "STORED\r\n"
	  "STORED\r\n"
	  "STORED\r\n"
	  "STORED\r\n"
	  "STORED\r\n"
	  "STORED\r\n"
	  "STORED\r\n"
	  "STORED\r\n"
	  "STORED\r\n"
	  "VALUE k0 0 1\r\n"
	  "0\r\n"
	  "VALUE k3 0 1\r\n"
	  "3\r\n"
	  "VALUE k6 0 1\r\n"
	  "6\r\n"
	  "VALUE k9 0 1\r\n"
	  "9\r\n"
	  "VALUE k12 0 2\r\n"
	  "12\r\n"
	  "VALUE k15 0 2\r\n"
	  "15\r\n"
	  "VALUE k18 0 2\r\n"
	  "18\r\n"
	  "VALUE k21 0 2\r\n"
	  "21\r\n"
	  "VALUE k24 0 2\r\n"
	  "24\r\n"
	  "VALUE k27 0 2\r\n"
	  "27\r\n"
	  "END\r\n"
	  "VALUE k1 0 1 2\r\n"
	  "1\r\n"
	  "VALUE k2 0 1 3\r\n"
	  "2\r\n"
	  "VALUE k1 0 1 2\r\n"
	  "1\r\n"
	  "END\r\n" },
	{ "set a 0 0 1\r\n"
	  "x\r\n"
	  "get a a a a\r\n",
	  "STORED\r\n"
	  "VALUE a 0 1\r\n"
	  "x\r\n"
	  "VALUE a 0 1\r\n"
	  "x\r\n"
	  "VALUE a 0 1\r\n"
	  "x\r\n"
	  "VALUE a 0 1\r\n"
	  "x\r\n"
	  "END\r\n" },
	{ "add a 0 0 1 noreply\r\n"
	  "x\r\n"
	  "add a 0 0 1 noreply\r\n"
	  "y\r\n"
	  "get a\r\n",
	  "VALUE a 0 1\r\n"
	  "x\r\n"
	  "END\r\n" },
	{ "set a 0 0 1 noreply\r\n"
	  "x\r\n"
	  "set a x 0 1 noreply\r\n"
	  "y\r\n"
	  "get a\r\n",
	  "ERROR\r\n"
	  "VALUE a 0 1\r\n"
	  "x\r\n"
	  "END\r\n" },
	{ "set a 0 0 1\r\n"
	  "x\r\n"
	  "delete a noreply\r\n"
	  "get a\r\n",
	  "STORED\r\n"
	  "END\r\n" },
	{ "set a 0 0 1\r\n"
	  "x\r\n"
	  "delete a 0\r\n"
	  "get a\r\n",
	  "STORED\r\n"
	  "DELETED\r\n"
	  "END\r\n" },
	{ "set a 0 0 1\r\n"
	  "x\r\n"
	  "delete a 0 noreply\r\n"
	  "get a\r\n",
	  "STORED\r\n"
	  "END\r\n" },
	{ "set a 0 0 1\r\n"
	  "1\r\n"
	  "incr a 1 noreply\r\n"
	  "decr a 5 noreply\r\n"
	  "get a\r\n",
	  "STORED\r\n"
	  "VALUE a 0 1\r\n"
	  "0\r\n"
	  "END\r\n" },
	{ "touch a 0 noreply\r\n"
	  "touch a noreply\r\n",
	  "" },
	{ "flush_all 0 noreply\r\n"
	  "flush_all 100\r\n"
	  "flush_all 0\r\n",
	  "OK\r\n"
	  "OK\r\n" },
	{ "set a 0 0 1\r\n"
	  "x\r\n"
	  "flush_all 100\r\n"
	  "get a\r\n"
	  "flush_all\r\n"
	  "get a\r\n",
	  "STORED\r\n"
	  "OK\r\n"
	  "VALUE a 0 1\r\n"
	  "x\r\n"
	  "END\r\n"
	  "OK\r\n"
	  "END\r\n" },
	{ "verbosity 5\r\n"
	  "verbosity 0 noreply\r\n"
	  "verbosity 1\r\n",
	  "OK\r\n"
	  "OK\r\n" },
	{ "set a 0 0 10\r\n"
	  "0123456789\r\n"
	  "set b 0 0 3\r\n"
	  "abc\r\n"
	  "get a b\r\n",
	  "STORED\r\n"
	  "STORED\r\n"
	  "VALUE a 0 10\r\n"
	  "0123456789\r\n"
	  "VALUE b 0 3\r\n"
	  "abc\r\n"
	  "END\r\n" },
	{ "set a 0 0 10\r\n"
	  "01234\r\n"
	  "6789\r\n"
	  "get a\r\n",
	  "CLIENT_ERROR bad data chunk\r\n"
	  "ERROR\r\n"
	  "END\r\n" },
	{ "set a 0 0 0\r\n"
	  "\r\n"
	  "incr a 1\r\n"
	  "append a 0 0 2\r\n"
	  "12\r\n"
	  "incr a 1\r\n"
	  "get a\r\n",
	  "STORED\r\n"
	  "CLIENT_ERROR cannot increment or decrement non-numeric v"
	  "alue\r\n"
	  "STORED\r\n"
	  "13\r\n"
	  "VALUE a 0 2\r\n"
	  "13\r\n"
	  "END\r\n" },
	{ "set a 0 0 3\r\n"
	  "007\r\n"
	  "incr a 1\r\n"
	  "get a\r\n"
	  "decr a 100\r\n"
	  "get a\r\n",
	  "STORED\r\n"
	  "8\r\n"
	  "VALUE a 0 3\r\n"
	  "8  \r\n"
	  "END\r\n"
	  "0\r\n"
	  "VALUE a 0 3\r\n"
	  "0  \r\n"
	  "END\r\n" },
	{ "set a 0 0 22\r\n"
	  "0000000000000000000012\r\n"
	  "incr a 1\r\n"
	  "get a\r\n",
	  "STORED\r\n"
	  "13\r\n"
	  "VALUE a 0 22\r\n"
	  "13                    \r\n"
	  "END\r\n" },
	{ "set a 4294967295 0 1\r\n"
	  "x\r\n"
	  "gets a\r\n"
	  "prepend a 0 0 1\r\n"
	  "y\r\n"
	  "get a\r\n",
	  "STORED\r\n"
	  "VALUE a 4294967295 1 1\r\n"
	  "x\r\n"
	  "END\r\n"
	  "STORED\r\n"
	  "VALUE a 4294967295 2\r\n"
	  "yx\r\n"
	  "END\r\n" },
	{ "cas a 0 0 1 1 noreply\r\n"
	  "x\r\n"
	  "cas a 0 0 1 noreply\r\n"
	  "x\r\n",
	  "ERROR\r\n" },
	{ "cas a 0 0 1 x noreply\r\n"
	  "x\r\n",
	  "ERROR\r\n" },
	{ "set a 0 0 1\r\n"
	  "x\r\n"
	  "cas a 0 0 1 18446744073709551615\r\n"
	  "y\r\n"
	  "cas a 0 0 1 -1\r\n"
	  "y\r\n",
	  "STORED\r\n"
	  "EXISTS\r\n"
	  "CLIENT_ERROR bad command line format\r\n"
	  "ERROR\r\n" },
	{ "set  a  0  0  1 \r\n"
	  "x\r\n"
	  "get   a\r\n",
	  "STORED\r\n"
	  "VALUE a 0 1\r\n"
	  "x\r\n"
	  "END\r\n" },
	{ "set\r\n",
	  "ERROR\r\n" },
	{ "set a 0 0 1 noreply\r\n",
	  "" },
	{ "incr a\r\n"
	  "decr\r\n"
	  "touch\r\n"
	  "incr a 1 2 3\r\n",
	  "ERROR\r\n"
	  "ERROR\r\n"
	  "ERROR\r\n"
	  "ERROR\r\n" },
	{ "\r\n"
	  "\r\n"
	  "\n\n",
	  "ERROR\r\n"
	  "ERROR\r\n"
	  "ERROR\r\n"
	  "ERROR\r\n" },
	{ "shutdown\r\n"
	  "shutdown graceful\r\n",
	  "ERROR: shutdown not enabled\r\n"
	  "ERROR: shutdown not enabled\r\n" },
	{ "get a b c d e f g h i j k l m n o p q r s t u v w x y z "
	  "aa bb cc dd ee ff\r\n",
	  "END\r\n" },
	{ "set a 0 0 1 noreply x y z\r\n"
	  "x\r\n",
	  "ERROR\r\n"
	  "ERROR\r\n" },
	{ "delete a b\r\n"
	  "delete a noreply x\r\n",
	  "CLIENT_ERROR bad command line format.  Usage: delete <ke"
	  "y> [noreply]\r\n"
	  "CLIENT_ERROR bad command line format.  Usage: delete <ke"
	  "y> [noreply]\r\n" },
	{ "set kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"
	  "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"
	  "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"
	  "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"
	  "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkk 0 0 1\r\n"
	  "x\r\n"
	  "get kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"
	  "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"
	  "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"
	  "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"
	  "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkk\r\n",
	  "STORED\r\n"
	  "VALUE kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"
	  "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"
	  "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"
	  "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"
	  "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk 0 1\r\n"
	  "x\r\n"
	  "END\r\n" },
	{ "set \x80""\xff"" 0 0 1\r\n"
	  "x\r\n"
	  "get \x80""\xff""\r\n",
	  "STORED\r\n"
	  "VALUE \x80""\xff"" 0 1\r\n"
	  "x\r\n"
	  "END\r\n" },
	{ "GET / HTTP/1.0\r\n",
	  "", true },
	{ "get / HTTP/1.0\r\n",
	  "END\r\n" },
	{ "POST /x HTTP/1.1\r\n"
	  "Host: a\r\n"
	  "\r\n",
	  "", true },
	{ "HTTP/1.1\r\n"
	  "version\r\n",
	  "", true },
	/* keys may hold control bytes (memcaslap's do); only a space ends
	 * a key */
	{ "get a\x01 a\r\n",
	  "END\r\n" },
	{ "get a\r\r\n",
	  "END\r\n" },
	{ "get a\tb\r\n",
	  "END\r\n" },
	{ "set a\x7f 0 0 1\r\nx\r\nget a\x7f\r\n",
	  "STORED\r\nVALUE a\x7f 0 1\r\nx\r\nEND\r\n" },
	{ "set \x10\x10k 0 0 2\r\nhi\r\nget \x10\x10k\r\n",
	  "STORED\r\nVALUE \x10\x10k 0 2\r\nhi\r\nEND\r\n" },
};
