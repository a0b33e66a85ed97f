# XenStore request sequences run against the simulator and the real xenstored 4.17.
# Syntax: see support/harness.rs. Connections named G<domid> are guest rings; others are
# privileged socket connections. Each case starts on a fresh daemon.

# ---------------------------------------------------------------- READ / WRITE / MKDIR
case write and read back, rig bytes
A WRITE "/wiretest/key\0value"
A READ "/wiretest/key\0"
A DIRECTORY "/wiretest\0"
A READ "/wiretest/missing\0"

case initial tree after start-up
A DIRECTORY "/\0"
A DIRECTORY "/tool\0"
A READ "/tool/xenstored\0"
A GET_PERMS "/\0"
A GET_PERMS "/tool/xenstored\0"
A DIRECTORY "/local\0"

case write creates implicit parents with empty data
A WRITE "/a/b/c/d\0deep"
A READ "/a\0"
A READ "/a/b/c\0"
A DIRECTORY "/a/b\0"
A GET_PERMS "/a/b/c\0"

case write overwrites and keeps children
A WRITE "/p\0one"
A WRITE "/p/child\0x"
A WRITE "/p\0two"
A READ "/p\0"
A DIRECTORY "/p\0"

case binary data with embedded NULs and empty values
A WRITE "/bin\0a\0b\0\xff"
A READ "/bin\0"
A WRITE "/empty\0"
A READ "/empty\0"

case write payload without any NUL is invalid
A WRITE "/nonul"
A WRITE ""
A READ "/nonul\0"

case read payload framing errors
A READ "/tool\0\0"
A READ "/tool"
A READ ""
A READ "\0"
A DIRECTORY "/tool\0extra"

case invalid paths
A WRITE "/bad path\0x"
A WRITE "/a//b\0x"
A WRITE "/trailing/\0x"
A WRITE "/semi;colon\0x"
A MKDIR "/ok-_@chars\0"
A READ "/ok-_@chars\0"
A WRITE "@special\0x"
A READ "@releaseDomain\0"

case relative paths from a socket are under /local/domain/0
A WRITE "rel/key\0v"
A READ "/local/domain/0/rel/key\0"
A READ "rel/key\0"
A DIRECTORY "/local/domain/0\0"

case mkdir new, existing and nested
A MKDIR "/m/n/o\0"
A MKDIR "/m/n/o\0"
A WRITE "/m/n/o\0data"
A MKDIR "/m/n/o\0"
A READ "/m/n/o\0"
A DIRECTORY "/m\0"
A MKDIR "/m/n\0extra"

case children keep creation order
A WRITE "/ord/zeta\0"
A WRITE "/ord/alpha\0"
A WRITE "/ord/mid\0"
A RM "/ord/alpha\0"
A WRITE "/ord/alpha\0"
A DIRECTORY "/ord\0"

case long paths and values at the limits
A WRITE "/long/{200*abcdefghij}\0v"
A READ "/long/{200*abcdefghij}\0"
A WRITE "/v\0{400*0123456789}"
A READ "/v\0"
A WRITE "/v2\0{408*0123456789}"
A WRITE "/v3\0{409*0123456789}"

# ---------------------------------------------------------------- RM
case rm subtree and missing nodes
A WRITE "/r/a/b\0x"
A WRITE "/r/a/c\0y"
A WRITE "/r/d\0z"
A RM "/r/a\0"
A DIRECTORY "/r\0"
A READ "/r/a/b\0"
A RM "/r/a\0"
A RM "/r/nope/deeper\0"
A RM "/\0"
A RM "/r\0"
A DIRECTORY "/\0"

case rm payload errors
A RM "/x"
A RM "/x\0\0"
A RM "bad path\0"

# ---------------------------------------------------------------- DIRECTORY_PART
case directory part small list
A WRITE "/dp/one\0"
A WRITE "/dp/two\0"
A WRITE "/dp/three\0"
A DIRECTORY_PART "/dp\00\0"
A DIRECTORY_PART "/dp\04\0"
A DIRECTORY_PART "/dp\02\0"
A DIRECTORY_PART "/dp\0100\0"
A DIRECTORY_PART "/dp/one\00\0"
A DIRECTORY_PART "/dp\0"
A DIRECTORY_PART "/dp\00\0x\0"
A DIRECTORY_PART "/nope\00\0"

case directory part paging a large list and directory E2BIG
A WRITE "/big/{40*x}00\0"
A WRITE "/big/{40*x}01\0"
A WRITE "/big/{40*x}02\0"
A WRITE "/big/{40*x}03\0"
A WRITE "/big/{40*x}04\0"
A WRITE "/big/{40*x}05\0"
A WRITE "/big/{40*x}06\0"
A WRITE "/big/{40*x}07\0"
A WRITE "/big/{40*x}08\0"
A WRITE "/big/{40*x}09\0"
A WRITE "/big/{40*x}10\0"
A WRITE "/big/{40*x}11\0"
A WRITE "/big/{40*x}12\0"
A WRITE "/big/{40*x}13\0"
A WRITE "/big/{40*x}14\0"
A WRITE "/big/{40*x}15\0"
A WRITE "/big/{40*x}16\0"
A WRITE "/big/{40*x}17\0"
A WRITE "/big/{40*x}18\0"
A WRITE "/big/{40*x}19\0"
A WRITE "/big/{40*x}20\0"
A WRITE "/big/{40*x}21\0"
A WRITE "/big/{40*x}22\0"
A WRITE "/big/{40*x}23\0"
A WRITE "/big/{40*x}24\0"
A WRITE "/big/{40*x}25\0"
A WRITE "/big/{40*x}26\0"
A WRITE "/big/{40*x}27\0"
A WRITE "/big/{40*x}28\0"
A WRITE "/big/{40*x}29\0"
A WRITE "/big/{40*x}30\0"
A WRITE "/big/{40*x}31\0"
A WRITE "/big/{40*x}32\0"
A WRITE "/big/{40*x}33\0"
A WRITE "/big/{40*x}34\0"
A WRITE "/big/{40*x}35\0"
A WRITE "/big/{40*x}36\0"
A WRITE "/big/{40*x}37\0"
A WRITE "/big/{40*x}38\0"
A WRITE "/big/{40*x}39\0"
A WRITE "/big/{40*x}40\0"
A WRITE "/big/{40*x}41\0"
A WRITE "/big/{40*x}42\0"
A WRITE "/big/{40*x}43\0"
A WRITE "/big/{40*x}44\0"
A WRITE "/big/{40*x}45\0"
A WRITE "/big/{40*x}46\0"
A WRITE "/big/{40*x}47\0"
A WRITE "/big/{40*x}48\0"
A WRITE "/big/{40*x}49\0"
A WRITE "/big/{40*x}50\0"
A WRITE "/big/{40*x}51\0"
A WRITE "/big/{40*x}52\0"
A WRITE "/big/{40*x}53\0"
A WRITE "/big/{40*x}54\0"
A WRITE "/big/{40*x}55\0"
A WRITE "/big/{40*x}56\0"
A WRITE "/big/{40*x}57\0"
A WRITE "/big/{40*x}58\0"
A WRITE "/big/{40*x}59\0"
A WRITE "/big/{40*x}60\0"
A WRITE "/big/{40*x}61\0"
A WRITE "/big/{40*x}62\0"
A WRITE "/big/{40*x}63\0"
A WRITE "/big/{40*x}64\0"
A WRITE "/big/{40*x}65\0"
A WRITE "/big/{40*x}66\0"
A WRITE "/big/{40*x}67\0"
A WRITE "/big/{40*x}68\0"
A WRITE "/big/{40*x}69\0"
A WRITE "/big/{40*x}70\0"
A WRITE "/big/{40*x}71\0"
A WRITE "/big/{40*x}72\0"
A WRITE "/big/{40*x}73\0"
A WRITE "/big/{40*x}74\0"
A WRITE "/big/{40*x}75\0"
A WRITE "/big/{40*x}76\0"
A WRITE "/big/{40*x}77\0"
A WRITE "/big/{40*x}78\0"
A WRITE "/big/{40*x}79\0"
A WRITE "/big/{40*x}80\0"
A WRITE "/big/{40*x}81\0"
A WRITE "/big/{40*x}82\0"
A WRITE "/big/{40*x}83\0"
A WRITE "/big/{40*x}84\0"
A WRITE "/big/{40*x}85\0"
A WRITE "/big/{40*x}86\0"
A WRITE "/big/{40*x}87\0"
A WRITE "/big/{40*x}88\0"
A WRITE "/big/{40*x}89\0"
A WRITE "/big/{40*x}90\0"
A WRITE "/big/{40*x}91\0"
A WRITE "/big/{40*x}92\0"
A WRITE "/big/{40*x}93\0"
A WRITE "/big/{40*x}94\0"
A WRITE "/big/{40*x}95\0"
A WRITE "/big/{40*x}96\0"
A WRITE "/big/{40*x}97\0"
A WRITE "/big/{40*x}98\0"
A WRITE "/big/{40*x}99\0"
A DIRECTORY "/big\0"
A DIRECTORY_PART "/big\00\0"
A DIRECTORY_PART "/big\04085\0"
A DIRECTORY_PART "/big\04300\0"

# ---------------------------------------------------------------- permissions (dom0)
case get and set perms as dom0
A WRITE "/pm/x\0v"
A SET_PERMS "/pm/x\0n0\0r1\0w2\0b3\0"
A GET_PERMS "/pm/x\0"
A SET_PERMS "/pm/x\0b5\0"
A GET_PERMS "/pm/x\0"
A WRITE "/pm/x/child\0c"
A GET_PERMS "/pm/x/child\0"

case set perms syntax errors
A WRITE "/ps\0v"
A SET_PERMS "/ps\0"
A SET_PERMS "/ps\0x0\0"
A SET_PERMS "/ps\0r\0"
A SET_PERMS "/ps\0r1x\0"
A SET_PERMS "/ps\0n0\0q1\0"
A SET_PERMS "/ps\0n0"
A SET_PERMS "/missing/node\0n0\0"
A SET_PERMS "/ps\0n0x10\0"
A GET_PERMS "/ps\0"
A SET_PERMS "/ps\0n010\0"
A GET_PERMS "/ps\0"

case perms naming domains that do not exist are ignored
A WRITE "/pi\0v"
A SET_PERMS "/pi\0n0\0r7\0"
A GET_PERMS "/pi\0"
A SET_PERMS "/pi\0n7\0"
A GET_PERMS "/pi\0"

case get and set perms on special nodes
A GET_PERMS "@releaseDomain\0"
A GET_PERMS "@introduceDomain\0"
A GET_PERMS "@other\0"
A SET_PERMS "@releaseDomain\0n0\0r1\0"
A GET_PERMS "@releaseDomain\0"
A GET_PERMS "@bad path\0"

# ---------------------------------------------------------------- unknown messages and ids
case unknown and reserved message types
A 99 "/x\0"
A WATCH_EVENT "/x\0t\0"
A ERROR "EINVAL\0"
A 20 ""
A CONTROL "print\0hello\0"

case get domain path
A GET_DOMAIN_PATH "0\0"
A GET_DOMAIN_PATH "7\0"
A GET_DOMAIN_PATH "abc\0"
A GET_DOMAIN_PATH "-1\0"
A GET_DOMAIN_PATH "5"
A GET_DOMAIN_PATH@5 "1\0"

case unknown transaction id
A READ@77 "/tool\0"
A WRITE@77 "/x\0y"
A TRANSACTION_END@77 "T\0"
A WATCH@77 "/x\0t\0"
A GET_DOMAIN_PATH@77 "1\0"

# ---------------------------------------------------------------- transactions
case transaction commit makes writes visible
A TRANSACTION_START "\0"
A WRITE@t1 "/tx/a\0in-tx"
A READ@t1 "/tx/a\0"
B READ "/tx/a\0"
A TRANSACTION_END@t1 "T\0"
B READ "/tx/a\0"

case transaction abort discards writes
A WRITE "/ta\0old"
A TRANSACTION_START "\0"
A WRITE@t1 "/ta\0new"
A RM@t1 "/ta\0"
A READ@t1 "/ta\0"
A TRANSACTION_END@t1 "F\0"
A READ "/ta\0"

case transaction conflict on read node gives EAGAIN
A WRITE "/tc/x\01"
A TRANSACTION_START "\0"
A READ@t1 "/tc/x\0"
B WRITE "/tc/x\02"
A WRITE@t1 "/tc/y\0from-tx"
A TRANSACTION_END@t1 "T\0"
A READ "/tc/y\0"
A TRANSACTION_END@t1 "T\0"

case transaction conflict on created node
A TRANSACTION_START "\0"
A WRITE@t1 "/tn/new\0tx"
B WRITE "/tn/new\0outside"
A TRANSACTION_END@t1 "T\0"
A READ "/tn/new\0"

case transaction without conflict on unrelated write
A WRITE "/tu/x\01"
A TRANSACTION_START "\0"
A READ@t1 "/tu/x\0"
B WRITE "/other\0z"
A WRITE@t1 "/tu/x\02"
A TRANSACTION_END@t1 "T\0"
A READ "/tu/x\0"

case transaction end argument errors and nesting
A TRANSACTION_START "\0"
A TRANSACTION_END@t1 "X\0"
A TRANSACTION_END@t1 "T"
A TRANSACTION_END@t1 "\0"
A TRANSACTION_START@t1 "\0"
A TRANSACTION_END "T\0"
A TRANSACTION_END@t1 "F\0"
A TRANSACTION_END@t1 "F\0"

case transaction ids count up per connection
A TRANSACTION_START "\0"
A TRANSACTION_START "\0"
B TRANSACTION_START "\0"
A TRANSACTION_END@t1 "F\0"
A TRANSACTION_START "\0"
A TRANSACTION_START "anything\0"

case transaction rm then write and directory view
A WRITE "/tr/a\0x"
A WRITE "/tr/b\0y"
A TRANSACTION_START "\0"
A RM@t1 "/tr/a\0"
A DIRECTORY@t1 "/tr\0"
B DIRECTORY "/tr\0"
A WRITE@t1 "/tr/c\0z"
A DIRECTORY@t1 "/tr\0"
A TRANSACTION_END@t1 "T\0"
A DIRECTORY "/tr\0"

case two interfering transactions
A WRITE "/ti/a\0a"
A WRITE "/ti/b\0b"
A TRANSACTION_START "\0"
B TRANSACTION_START "\0"
A READ@t1 "/ti/a\0"
B READ@t1 "/ti/b\0"
A WRITE@t1 "/ti/b\0fromA"
B WRITE@t1 "/ti/a\0fromB"
A TRANSACTION_END@t1 "T\0"
B TRANSACTION_END@t1 "T\0"
A READ "/ti/a\0"
A READ "/ti/b\0"

case directory part generation inside a transaction
A WRITE "/tg/x\0"
A DIRECTORY_PART "/tg\00\0"
A TRANSACTION_START "\0"
A WRITE@t1 "/tg/y\0"
A DIRECTORY_PART@t1 "/tg\00\0"
A TRANSACTION_END@t1 "T\0"
A DIRECTORY_PART "/tg\00\0"

# ---------------------------------------------------------------- watches (dom0)
case watch fires initially and on writes below
W WATCH "/wiretest\0mytoken\0"
A WRITE "/wiretest/key\0v"
A WRITE "/wiretest\0v"
A WRITE "/wiretestx\0v"
A WRITE "/wire\0v"

case watch on a missing node and on root
W WATCH "/nothere\0t1\0"
W WATCH "/\0root\0"
A WRITE "/nothere/x\0v"
A MKDIR "/other\0"

case watch duplicates, unwatch and errors
W WATCH "/d\0tok\0"
W WATCH "/d\0tok\0"
W WATCH "/d\0tok2\0"
W UNWATCH "/d\0tok\0"
W UNWATCH "/d\0tok\0"
W WATCH "/d\0"
W WATCH "/d\0t\0x\0"
W WATCH "/d\0t\0junk"
W WATCH "bad path\0t\0"
W UNWATCH "/d\0"
A WRITE "/d\0v"

case watch removal events for subtree
A WRITE "/wr/a/b\0x"
A WRITE "/wr/a/c\0y"
W WATCH "/wr\0all\0"
W WATCH "/wr/a/b\0exact\0"
W WATCH "/wr/a/b/never\0sub\0"
A RM "/wr/a\0"

case watch relative path from socket
W WATCH "rel\0r\0"
A WRITE "/local/domain/0/rel/x\0v"
W UNWATCH "rel\0r\0"
A WRITE "/local/domain/0/rel/y\0v"

case watch special paths
W WATCH "@introduceDomain\0i\0"
W WATCH "@releaseDomain\0r\0"
W WATCH "@other\0o\0"
W WATCH "@bad path!\0b\0"
A WRITE "/x\0v"

case watch events from set perms and mkdir
W WATCH "/wp\0t\0"
A MKDIR "/wp/d\0"
A MKDIR "/wp/d\0"
A SET_PERMS "/wp/d\0n0\0r1\0"

case watch events inside transaction fire at commit
W WATCH "/wt\0t\0"
A TRANSACTION_START "\0"
A WRITE@t1 "/wt/a\01"
A WRITE@t1 "/wt/b\02"
A MKDIR@t1 "/wt/c/d\0"
A RM@t1 "/wt/a\0"
A TRANSACTION_END@t1 "T\0"

case watch events dropped with aborted transaction
W WATCH "/wa\0t\0"
A TRANSACTION_START "\0"
A WRITE@t1 "/wa/x\01"
A TRANSACTION_END@t1 "F\0"

case watch event order for multiple watches
W WATCH "/wo\0first\0"
W WATCH "/wo/a\0second\0"
W WATCH "/\0third\0"
A WRITE "/wo/a/b\0v"

case reset watches
W WATCH "/rw\0t\0"
W TRANSACTION_START "\0"
W RESET_WATCHES ""
A WRITE "/rw/x\0v"
W READ@t1 "/rw/x\0"
W UNWATCH "/rw\0t\0"

# ---------------------------------------------------------------- domains, rings
case introduce a guest and read over the ring
domains 1
A WRITE "/local/domain/1/name\0guest-one"
A SET_PERMS "/local/domain/1\0n1\0"
A SET_PERMS "/local/domain/1/name\0n1\0"
A INTRODUCE "1\04660\03\0"
G1 ring
G1 READ "name\0"
G1 READ "/local/domain/1/name\0"
G1 READ "/local/domain/0/name\0"
G1 READ "/tool\0"
G1 WRITE "data/hello\0from-guest"
G1 GET_PERMS "data/hello\0"
G1 ring

case guest watches over the ring
domains 1
A MKDIR "/local/domain/1\0"
A SET_PERMS "/local/domain/1\0n1\0"
A INTRODUCE "1\04660\03\0"
G1 WRITE "data/hello\0x"
G1 WATCH "data\0tok\0"
A WRITE "/local/domain/1/data/fromdom0\0x"
G1 WATCH "/local/domain/1/device\0abs\0"
A WRITE "/local/domain/1/device/vif/0/state\01"
G1 UNWATCH "data\0tok\0"
A WRITE "/local/domain/1/data/again\0y"

case introduce errors
domains 1
A INTRODUCE "1\04660\0"
A INTRODUCE "1\04660\00\0"
A INTRODUCE "1\04660\0-5\0"
A INTRODUCE "9\04660\03\0"
A INTRODUCE "1\04660\03\0"
A INTRODUCE "1\04660\03\0"
A IS_DOMAIN_INTRODUCED "1\0"
A IS_DOMAIN_INTRODUCED "2\0"
A IS_DOMAIN_INTRODUCED "0\0"
A IS_DOMAIN_INTRODUCED "32752\0"

case guest may not use privileged operations
domains 1 2
A INTRODUCE "1\04660\03\0"
G1 INTRODUCE "2\04660\03\0"
G1 RELEASE "2\0"
G1 IS_DOMAIN_INTRODUCED "1\0"
G1 RESUME "1\0"
G1 SET_TARGET "1\02\0"
G1 CONTROL "print\0x\0"
G1 GET_DOMAIN_PATH "2\0"
G1 RESET_WATCHES ""

case guest permission rules
domains 1 2
A WRITE "/local/domain/1/x\0"
A SET_PERMS "/local/domain/1\0n1\0"
A WRITE "/shared/ro\0dom0-data"
A SET_PERMS "/shared\0n0\0r1\0"
A SET_PERMS "/shared/ro\0n0\0r1\0"
A WRITE "/shared/rw\0"
A SET_PERMS "/shared/rw\0n0\0b1\0"
A WRITE "/shared/wo\0"
A SET_PERMS "/shared/wo\0n0\0w1\0"
A WRITE "/secret/inner\0s"
A INTRODUCE "1\04660\03\0"
G1 READ "/shared/ro\0"
G1 WRITE "/shared/ro\0no"
G1 READ "/shared/rw\0"
G1 WRITE "/shared/rw\0yes"
G1 WRITE "/shared/rw/sub\0created"
G1 GET_PERMS "/shared/rw/sub\0"
G1 READ "/shared/wo\0"
G1 WRITE "/shared/wo\0w"
G1 READ "/shared/missing\0"
G1 READ "/secret/inner\0"
G1 READ "/secret/missing\0"
G1 DIRECTORY "/shared\0"
G1 DIRECTORY "/\0"
G1 WRITE "/newtop\0x"
G1 MKDIR "/shared/mk\0"
G1 RM "/shared/ro\0"
G1 RM "/shared/absent\0"

case guest owner rules for set perms
domains 1 2
A MKDIR "/local/domain/1\0"
A SET_PERMS "/local/domain/1\0n1\0"
A INTRODUCE "1\04660\03\0"
G1 WRITE "mine\0x"
G1 GET_PERMS "mine\0"
G1 SET_PERMS "mine\0n1\0r2\0"
G1 GET_PERMS "mine\0"
G1 SET_PERMS "mine\0n2\0"
G1 SET_PERMS "mine\0n0\0"
G1 SET_PERMS "/local/domain\0n1\0"
G1 SET_PERMS "mine\0n1\0r2\0r3\0r4\0r5\0b6\0"
A SET_PERMS "/local/domain/1/mine\0n2\0r1\0"
G1 SET_PERMS "mine\0n1\0"
G1 READ "mine\0"

case release a domain deletes its nodes and fires releaseDomain
domains 1
A MKDIR "/local/domain/1\0"
A SET_PERMS "/local/domain/1\0n1\0"
A WRITE "/keep/me\0"
A INTRODUCE "1\04660\03\0"
G1 WRITE "data/x\0v"
W WATCH "@releaseDomain\0rel\0"
W WATCH "/local/domain/1\0home\0"
A RELEASE "1\0"
G1 detach
A READ "/local/domain/1/data/x\0"
A DIRECTORY "/local/domain\0"
A RELEASE "1\0"
A RELEASE "0\0"
A RELEASE "x"
A IS_DOMAIN_INTRODUCED "1\0"

case introduce fires introduceDomain for dom0 watchers
domains 1
W WATCH "@introduceDomain\0intro\0"
W WATCH "/\0root\0"
A INTRODUCE "1\04660\03\0"
A INTRODUCE "1\04660\03\0"

case guest relative watch paths and events
domains 1
A MKDIR "/local/domain/1\0"
A SET_PERMS "/local/domain/1\0n1\0"
A INTRODUCE "1\04660\03\0"
G1 WATCH "control/shutdown\0sd\0"
A WRITE "/local/domain/1/control/shutdown\0poweroff"
G1 READ "control/shutdown\0"
G1 WRITE "control/shutdown\0"
G1 WATCH "\0homewatch\0"

case guest cannot see events for unreadable nodes
domains 1
A MKDIR "/local/domain/1\0"
A SET_PERMS "/local/domain/1\0n1\0"
A WRITE "/hidden/x\0"
A INTRODUCE "1\04660\03\0"
G1 WATCH "/hidden\0h\0"
A WRITE "/hidden/x\0secret"
A WRITE "/hidden/y\0secret"
A SET_PERMS "/hidden/x\0n0\0r1\0"
A WRITE "/hidden/x\0now-readable"
A RM "/hidden/x\0"

case guest special watches need permission
domains 1
A MKDIR "/local/domain/1\0"
A SET_PERMS "/local/domain/1\0n1\0"
A INTRODUCE "1\04660\03\0"
G1 WATCH "@introduceDomain\0i\0"
G1 WATCH "@releaseDomain\0r\0"
A SET_PERMS "@releaseDomain\0n0\0r1\0"
A INTRODUCE "1\04660\03\0"

case guest transactions over the ring
domains 1
A MKDIR "/local/domain/1\0"
A SET_PERMS "/local/domain/1\0n1\0"
A INTRODUCE "1\04660\03\0"
G1 TRANSACTION_START "\0"
G1 WRITE@t1 "device/vif/0/state\04"
G1 READ@t1 "device/vif/0/state\0"
A READ "/local/domain/1/device/vif/0/state\0"
G1 TRANSACTION_END@t1 "T\0"
A READ "/local/domain/1/device/vif/0/state\0"
G1 TRANSACTION_START "\0"
G1 READ@t1 "device/vif/0/state\0"
A WRITE "/local/domain/1/device/vif/0/state\05"
G1 WRITE@t1 "device/vif/0/state\06"
G1 TRANSACTION_END@t1 "T\0"
G1 READ "device/vif/0/state\0"

case ring index corruption cuts the guest off
domains 1
A MKDIR "/local/domain/1\0"
A SET_PERMS "/local/domain/1\0n1\0"
A INTRODUCE "1\04660\03\0"
G1 READ "/local/domain/1\0"
G1 ring
G1 poke req_prod 5000
G1 ring
A IS_DOMAIN_INTRODUCED "1\0"

case oversized message length on the ring
domains 1
A MKDIR "/local/domain/1\0"
A SET_PERMS "/local/domain/1\0n1\0"
A INTRODUCE "1\04660\03\0"
G1 raw "\x02\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x01\x10\x00\x00"
G1 ring

case oversized message length on a socket drops it
A raw "\x02\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x01\x10\x00\x00"
B READ "/tool\0"

case reintroduce resets the ring
domains 1
A MKDIR "/local/domain/1\0"
A SET_PERMS "/local/domain/1\0n1\0"
A INTRODUCE "1\04660\03\0"
G1 WATCH "/local/domain/1\0w\0"
G1 READ "/local/domain/1\0"
G1 ring
A INTRODUCE "1\04660\03\0"
G1 ring
A WRITE "/local/domain/1/x\0v"
G1 READ "/local/domain/1/x\0"

# ---------------------------------------------------------------- quotas
case node quota for a guest
args -E 5
domains 1
A MKDIR "/local/domain/1\0"
A SET_PERMS "/local/domain/1\0n1\0"
A INTRODUCE "1\04660\03\0"
G1 WRITE "a\0"
G1 WRITE "b\0"
G1 WRITE "c\0"
G1 WRITE "d\0"
G1 WRITE "e\0"
G1 WRITE "f\0"
G1 WRITE "g/h\0"
G1 RM "a\0"
G1 WRITE "f\0"
A WRITE "/local/domain/1/dom0-made\0"

case node quota applies to implicit parents
args -E 4
domains 1
A MKDIR "/local/domain/1\0"
A SET_PERMS "/local/domain/1\0n1\0"
A INTRODUCE "1\04660\03\0"
G1 WRITE "x/y/z/w\0"
G1 WRITE "x/y/z\0v"
G1 WRITE "q\0"
G1 DIRECTORY "\0"

case node quota checked at transaction commit
args -E 4
domains 1
A MKDIR "/local/domain/1\0"
A SET_PERMS "/local/domain/1\0n1\0"
A INTRODUCE "1\04660\03\0"
G1 WRITE "a\0"
G1 TRANSACTION_START "\0"
G1 WRITE@t1 "b\0"
G1 WRITE@t1 "c\0"
G1 TRANSACTION_END@t1 "T\0"
G1 DIRECTORY "\0"
G1 TRANSACTION_START "\0"
G1 WRITE@t2 "b\0"
G1 TRANSACTION_END@t2 "T\0"
G1 DIRECTORY "\0"

case node size quota for a guest
args -S 100
domains 1
A MKDIR "/local/domain/1\0"
A SET_PERMS "/local/domain/1\0n1\0"
A INTRODUCE "1\04660\03\0"
G1 WRITE "v\0{60*a}"
G1 WRITE "v\0{67*a}"
G1 WRITE "v\0{68*a}"
G1 WRITE "v\0{69*a}"
G1 WRITE "v\0{80*a}"
G1 READ "v\0"
A WRITE "/local/domain/1/v\0{200*b}"
G1 READ "v\0"

case node size quota counts child names and permissions
args -S 100
domains 1
A MKDIR "/local/domain/1\0"
A SET_PERMS "/local/domain/1\0n1\0"
A INTRODUCE "1\04660\03\0"
G1 WRITE "p/{30*c}\0"
G1 WRITE "p/{30*d}\0"
G1 WRITE "p/{30*e}\0"
G1 DIRECTORY "p\0"
G1 SET_PERMS "p\0n1\0r0\0r0\0r0\0r0\0r0\0r0\0r0\0r0\0"
G1 SET_PERMS "p/{30*c}\0n1\0r0\0r0\0r0\0r0\0"

case watch quota for a guest
args -W 2
domains 1
A MKDIR "/local/domain/1\0"
A SET_PERMS "/local/domain/1\0n1\0"
A INTRODUCE "1\04660\03\0"
G1 WATCH "a\0t\0"
G1 WATCH "b\0t\0"
G1 WATCH "c\0t\0"
G1 WATCH "d\0t\0"
G1 UNWATCH "a\0t\0"
G1 WATCH "e\0t\0"
W WATCH "/x1\0t\0"
W WATCH "/x2\0t\0"
W WATCH "/x3\0t\0"
W WATCH "/x4\0t\0"

case transaction quota for a guest
args -t 1
domains 1
A MKDIR "/local/domain/1\0"
A SET_PERMS "/local/domain/1\0n1\0"
A INTRODUCE "1\04660\03\0"
G1 TRANSACTION_START "\0"
G1 TRANSACTION_START "\0"
G1 TRANSACTION_START "\0"
G1 TRANSACTION_END@t1 "F\0"
G1 TRANSACTION_START "\0"
A TRANSACTION_START "\0"
A TRANSACTION_START "\0"
A TRANSACTION_START "\0"

case permission count quota
args -A 2
domains 1 2 3
A MKDIR "/local/domain/1\0"
A SET_PERMS "/local/domain/1\0n1\0"
A INTRODUCE "1\04660\03\0"
G1 WRITE "p\0"
G1 SET_PERMS "p\0n1\0r2\0"
G1 SET_PERMS "p\0n1\0r2\0r3\0"
G1 SET_PERMS "p\0n1\0r2\0r3\0r0\0"
G1 GET_PERMS "p\0"
A SET_PERMS "/local/domain/1/p\0n1\0r2\0r3\0r0\0"
A GET_PERMS "/local/domain/1/p\0"

case path length limit for a guest
domains 1
A MKDIR "/local/domain/1\0"
A SET_PERMS "/local/domain/1\0n1\0"
A INTRODUCE "1\04660\03\0"
G1 WRITE "{204*abcdefghij}abcdefgh\0v"
G1 WRITE "{204*abcdefghij}abcdefghi\0v"
G1 WRITE "/local/domain/1/{204*abcdefghij}abcdefgh\0v"
G1 WRITE "/local/domain/1/{204*abcdefghij}abcdefghi\0v"
G1 READ "{204*abcdefghij}abcdefghi\0"
A WRITE "/local/domain/1/{300*abcdefghij}\0dom0"

case path length limit option
args -M 20
domains 1
A MKDIR "/local/domain/1\0"
A SET_PERMS "/local/domain/1\0n1\0"
A INTRODUCE "1\04660\03\0"
G1 WRITE "12345678901234567890\0v"
G1 WRITE "123456789012345678901\0v"
G1 WATCH "123456789012345678901\0t\0"
G1 WATCH "/abcdefghijklmnopqrs\0t\0"
G1 WATCH "/abcdefghijklmnopqrst\0t\0"
A WRITE "/local/domain/1/123456789012345678901\0dom0"

# ---------------------------------------------------------------- more permissions
case dom0 sees everything regardless of perms
domains 1
A WRITE "/guestowned/x\0v"
A SET_PERMS "/guestowned\0n1\0"
A SET_PERMS "/guestowned/x\0n1\0"
A READ "/guestowned/x\0"
A WRITE "/guestowned/x\0w"
A GET_PERMS "/guestowned/x\0"
B DIRECTORY "/guestowned\0"
A RM "/guestowned\0"

case one guest cannot touch another guest's home
domains 1 2
A MKDIR "/local/domain/1\0"
A SET_PERMS "/local/domain/1\0n1\0"
A MKDIR "/local/domain/2\0"
A SET_PERMS "/local/domain/2\0n2\0"
A WRITE "/local/domain/2/secret\0s"
A SET_PERMS "/local/domain/2/secret\0n2\0"
A INTRODUCE "1\04660\03\0"
A INTRODUCE "2\04661\04\0"
G1 READ "/local/domain/2/secret\0"
G1 READ "/local/domain/2/nothing\0"
G1 WRITE "/local/domain/2/injected\0x"
G1 DIRECTORY "/local/domain/2\0"
G1 GET_PERMS "/local/domain/2\0"
G2 READ "secret\0"
G2 WRITE "/local/domain/1/injected\0x"
G2 RM "/local/domain/1\0"

case read permission for another domain by acl entry
domains 1 2
A MKDIR "/local/domain/1\0"
A SET_PERMS "/local/domain/1\0n1\0r2\0"
A MKDIR "/local/domain/2\0"
A SET_PERMS "/local/domain/2\0n2\0"
A INTRODUCE "1\04660\03\0"
A INTRODUCE "2\04661\04\0"
G1 WRITE "shared\0from-1"
G1 SET_PERMS "shared\0n1\0r2\0"
G2 READ "/local/domain/1/shared\0"
G2 WRITE "/local/domain/1/shared\0no"
G1 SET_PERMS "shared\0n1\0b2\0"
G2 WRITE "/local/domain/1/shared\0from-2"
G1 READ "shared\0"
G2 GET_PERMS "/local/domain/1/shared\0"
G2 SET_PERMS "/local/domain/1/shared\0n1\0b2\0"

case guest-created nodes are owned by the guest
domains 1
A WRITE "/open\0"
A SET_PERMS "/open\0n0\0b1\0"
A INTRODUCE "1\04660\03\0"
G1 WRITE "/open/a/b\0x"
G1 GET_PERMS "/open/a\0"
G1 GET_PERMS "/open/a/b\0"
A GET_PERMS "/open\0"
A WRITE "/open/dom0\0"
A GET_PERMS "/open/dom0\0"

case set perms on a node the guest can only write
domains 1
A WRITE "/wonly\0"
A SET_PERMS "/wonly\0n0\0w1\0"
A INTRODUCE "1\04660\03\0"
G1 SET_PERMS "/wonly\0n0\0b1\0"
G1 SET_PERMS "/wonly\0n1\0"
G1 GET_PERMS "/wonly\0"

case watch event when permissions are revoked
domains 1
A MKDIR "/local/domain/1\0"
A SET_PERMS "/local/domain/1\0n1\0"
A WRITE "/rev/x\0v"
A SET_PERMS "/rev\0n0\0r1\0"
A SET_PERMS "/rev/x\0n0\0r1\0"
A INTRODUCE "1\04660\03\0"
G1 WATCH "/rev\0t\0"
A SET_PERMS "/rev/x\0n0\0"
A WRITE "/rev/x\0after"
A SET_PERMS "/rev\0n0\0"
A WRITE "/rev/x\0hidden"

case guest rm of a subtree it owns with foreign children
domains 1
A MKDIR "/local/domain/1\0"
A SET_PERMS "/local/domain/1\0n1\0"
A INTRODUCE "1\04660\03\0"
G1 WRITE "tree/mine\0"
A WRITE "/local/domain/1/tree/dom0s\0x"
A GET_PERMS "/local/domain/1/tree/dom0s\0"
G1 RM "tree\0"
G1 DIRECTORY "\0"

# ---------------------------------------------------------------- domains
case set target lets a stub domain act for its target
domains 1 2
A MKDIR "/local/domain/1\0"
A SET_PERMS "/local/domain/1\0n1\0"
A WRITE "/local/domain/1/x\0v"
A SET_PERMS "/local/domain/1/x\0n1\0"
A INTRODUCE "1\04660\03\0"
A INTRODUCE "2\04661\04\0"
G2 READ "/local/domain/1/x\0"
A SET_TARGET "2\01\0"
G2 READ "/local/domain/1/x\0"
G2 WRITE "/local/domain/1/x\0by-stub"
A SET_TARGET "2\0"
A SET_TARGET "2\07\0"
A SET_TARGET "7\01\0"

case resume and is-introduced
domains 1
A INTRODUCE "1\04660\03\0"
A RESUME "1\0"
A RESUME "0\0"
A RESUME "5\0"
A RESUME "1"
A IS_DOMAIN_INTRODUCED "x"
A IS_DOMAIN_INTRODUCED "abc\0"

case release keeps nodes with keep-orphans
args -K
domains 1
A MKDIR "/local/domain/1\0"
A SET_PERMS "/local/domain/1\0n1\0"
A INTRODUCE "1\04660\03\0"
G1 WRITE "data/x\0v"
A RELEASE "1\0"
G1 detach
A GET_PERMS "/local/domain/1/data/x\0"
A READ "/local/domain/1/data/x\0"

case release removes stale acl entries
domains 1 2
A WRITE "/acl\0"
A INTRODUCE "1\04660\03\0"
A SET_PERMS "/acl\0n0\0r1\0"
A GET_PERMS "/acl\0"
A RELEASE "1\0"
G1 detach
A GET_PERMS "/acl\0"
A INTRODUCE "1\04660\03\0"
A GET_PERMS "/acl\0"
G1 READ "/acl\0"

case released guest watches are dropped
domains 1 2
A MKDIR "/local/domain/1\0"
A SET_PERMS "/local/domain/1\0n1\0"
A MKDIR "/local/domain/2\0"
A SET_PERMS "/local/domain/2\0n2\0"
A INTRODUCE "1\04660\03\0"
A INTRODUCE "2\04661\04\0"
G2 WRITE "x\0"
G1 WATCH "/local/domain/1\0t\0"
W WATCH "@releaseDomain\0r\0"
A RELEASE "2\0"
G2 detach
A WRITE "/local/domain/1/y\0"

case dom0 home and tool paths from a guest
domains 1
A INTRODUCE "1\04660\03\0"
G1 READ "/tool/xenstored\0"
G1 DIRECTORY "/tool\0"
G1 GET_PERMS "/\0"
G1 GET_DOMAIN_PATH "1\0"
G1 GET_DOMAIN_PATH "0\0"
G1 WRITE "x\0"

# ---------------------------------------------------------------- more transactions and watches
case transaction sees its own deletes and recreations
A WRITE "/tdr/a/b\0x"
A TRANSACTION_START "\0"
A RM@t1 "/tdr/a\0"
A READ@t1 "/tdr/a/b\0"
A WRITE@t1 "/tdr/a/c\0new"
A DIRECTORY@t1 "/tdr/a\0"
A TRANSACTION_END@t1 "T\0"
A DIRECTORY "/tdr/a\0"
A READ "/tdr/a/b\0"

case transaction conflict on deleted node
A WRITE "/tcd/x\0v"
A TRANSACTION_START "\0"
A READ@t1 "/tcd/x\0"
B RM "/tcd/x\0"
A WRITE@t1 "/tcd/y\0v"
A TRANSACTION_END@t1 "T\0"

case transaction conflict through directory listing
A WRITE "/tcl/a\0"
A TRANSACTION_START "\0"
A DIRECTORY@t1 "/tcl\0"
B WRITE "/tcl/b\0"
A WRITE@t1 "/tcl/c\0"
A TRANSACTION_END@t1 "T\0"

case transaction write without read does not conflict on parent data change
A WRITE "/tw\0orig"
A TRANSACTION_START "\0"
A WRITE@t1 "/tw\0tx"
B WRITE "/tw\0outside"
A TRANSACTION_END@t1 "T\0"
A READ "/tw\0"

case watches on transaction commit see final state permissions
domains 1
A MKDIR "/local/domain/1\0"
A SET_PERMS "/local/domain/1\0n1\0"
A INTRODUCE "1\04660\03\0"
G1 WATCH "\0home\0"
A TRANSACTION_START "\0"
A WRITE@t1 "/local/domain/1/a\0v"
A SET_PERMS@t1 "/local/domain/1/a\0n0\0"
A WRITE@t1 "/local/domain/1/b\0v"
A TRANSACTION_END@t1 "T\0"

case watch tokens with odd characters and relative token paths
W WATCH "/tok\0token with spaces!\0"
W WATCH "/tok\0\0"
A WRITE "/tok/x\0"
W UNWATCH "/tok\0\0"
A WRITE "/tok/y\0"

case rm fires watches on parents and subtree only
A WRITE "/rp/a/b/c\0"
W WATCH "/rp\0parent\0"
W WATCH "/rp/a/b/c\0leaf\0"
W WATCH "/rp/a/b/c/d\0belowleaf\0"
W WATCH "/rp/z\0sibling\0"
A RM "/rp/a/b\0"
A RM "/rp/a/b\0"

case watch on node created by mkdir in transaction then aborted
W WATCH "/wm\0t\0"
A TRANSACTION_START "\0"
A MKDIR@t1 "/wm/x\0"
A TRANSACTION_END@t1 "T\0"
A TRANSACTION_START "\0"
A RM@t1 "/wm/x\0"
A TRANSACTION_END@t1 "F\0"
A DIRECTORY "/wm\0"

case guest event stream after many changes over the ring
domains 1
A MKDIR "/local/domain/1\0"
A SET_PERMS "/local/domain/1\0n1\0"
A INTRODUCE "1\04660\03\0"
G1 WATCH "\0all\0"
A WRITE "/local/domain/1/{30*x}1\0{300*v}"
A WRITE "/local/domain/1/{30*x}2\0{300*v}"
A WRITE "/local/domain/1/{30*x}3\0{300*v}"
A WRITE "/local/domain/1/{30*x}4\0{300*v}"
A WRITE "/local/domain/1/{30*x}5\0{300*v}"
G1 READ "{30*x}5\0"
G1 ring

case large request and reply cross the ring wrap
domains 1
A MKDIR "/local/domain/1\0"
A SET_PERMS "/local/domain/1\0n1\0"
A INTRODUCE "1\04660\03\0"
G1 WRITE "big\0{300*0123456789}"
G1 READ "big\0"
G1 WRITE "big2\0{150*abcdefghij}"
G1 READ "big2\0"
G1 ring

# ---------------------------------------------------------------- stale errno answers
case malformed argument after explicit error returns
A TRANSACTION_END "T\0"
A READ ""
A TRANSACTION_START "\0"
A TRANSACTION_START@t1 "\0"
A READ ""
A UNWATCH "/nope\0t\0"
A GET_PERMS "x"
A WRITE "/se/new\0v"
A GET_PERMS "x"
A SET_PERMS "/se\0q0\0"
A DIRECTORY "x"
A 99 ""
A DIRECTORY "x"
A RM "x"

# (Stale-errno answers over a ring are not compared: under the LD_PRELOAD shim every
# event-channel notification leaves errno = ENOENT, which a real hypervisor would not.)

case guest reset watches and directory part over the ring
domains 1
A MKDIR "/local/domain/1\0"
A SET_PERMS "/local/domain/1\0n1\0"
A INTRODUCE "1\04660\03\0"
G1 WRITE "a\0"
G1 WRITE "b\0"
G1 DIRECTORY_PART "\00\0"
G1 DIRECTORY_PART "/local/domain\00\0"
G1 WATCH "a\0ta\0"
G1 TRANSACTION_START "\0"
G1 RESET_WATCHES ""
A WRITE "/local/domain/1/a\0changed"
G1 READ@t1 "a\0"
G1 TRANSACTION_START "\0"

# ---------------------------------------------------------------- more ring and multi-guest
case request split across two kicks on the ring
domains 1
A MKDIR "/local/domain/1\0"
A SET_PERMS "/local/domain/1\0n1\0"
A WRITE "/local/domain/1/name\0split"
A SET_PERMS "/local/domain/1/name\0n1\0"
A INTRODUCE "1\04660\03\0"
G1 raw "\x02\x00\x00\x00\x10\x00\x00\x00\x00\x00"
G1 ring
G1 raw "\x00\x00\x05\x00\x00\x00nam"
G1 ring
G1 raw "e\x00"
G1 ring

case two guests watching shared and private nodes
domains 1 2
A MKDIR "/local/domain/1\0"
A SET_PERMS "/local/domain/1\0n1\0"
A MKDIR "/local/domain/2\0"
A SET_PERMS "/local/domain/2\0n2\0"
A WRITE "/shared/cfg\0v0"
A SET_PERMS "/shared\0n0\0r1\0r2\0"
A SET_PERMS "/shared/cfg\0n0\0r1\0r2\0"
A INTRODUCE "1\04660\03\0"
A INTRODUCE "2\04661\04\0"
G1 WATCH "/shared\0s1\0"
G2 WATCH "/shared\0s2\0"
G1 WATCH "/local/domain/2\0spy\0"
A WRITE "/shared/cfg\0v1"
A WRITE "/local/domain/2/private\0p"
A SET_PERMS "/shared/cfg\0n0\0r2\0"
A WRITE "/shared/cfg\0v2"
G2 RM "/shared/cfg\0"

case guest transaction commit fires dom0 and guest watches
domains 1
A MKDIR "/local/domain/1\0"
A SET_PERMS "/local/domain/1\0n1\0"
A INTRODUCE "1\04660\03\0"
G1 WRITE "device/vbd/768/state\01"
W WATCH "/local/domain/1/device\0fe\0"
G1 WATCH "device\0mine\0"
G1 TRANSACTION_START "\0"
G1 WRITE@t1 "device/vbd/768/ring-ref\08"
G1 WRITE@t1 "device/vbd/768/event-channel\05"
G1 WRITE@t1 "device/vbd/768/state\03"
G1 RM@t1 "device/vbd/768/stale\0"
G1 TRANSACTION_END@t1 "T\0"
G1 TRANSACTION_START "\0"
G1 WRITE@t2 "device/vbd/768/state\05"
G1 TRANSACTION_END@t2 "F\0"

case dom0 transaction on a guest home fires guest watches with relative paths
domains 1
A MKDIR "/local/domain/1\0"
A SET_PERMS "/local/domain/1\0n1\0"
A INTRODUCE "1\04660\03\0"
G1 WATCH "control\0ctl\0"
A TRANSACTION_START "\0"
A WRITE@t1 "/local/domain/1/control/shutdown\0suspend"
A WRITE@t1 "/local/domain/1/control/feature-x\01"
A TRANSACTION_END@t1 "T\0"
G1 READ "control/shutdown\0"

case transaction node quota for a guest
args -Q transaction-nodes=4
domains 1
A MKDIR "/local/domain/1\0"
A SET_PERMS "/local/domain/1\0n1\0"
A INTRODUCE "1\04660\03\0"
G1 WRITE "a\0"
G1 WRITE "b\0"
G1 WRITE "c\0"
G1 TRANSACTION_START "\0"
G1 READ@t1 "a\0"
G1 READ@t1 "b\0"
G1 READ@t1 "c\0"
G1 READ@t1 "d\0"
G1 READ@t1 "e\0"
G1 READ@t1 "a\0"
G1 TRANSACTION_END@t1 "T\0"
A TRANSACTION_START "\0"
A READ@t1 "/local/domain/1/a\0"
A READ@t1 "/local/domain/1/b\0"
A READ@t1 "/local/domain/1/c\0"
A READ@t1 "/local/domain/1/d\0"
A READ@t1 "/local/domain/1/e\0"
A TRANSACTION_END@t1 "T\0"

case reintroducing a cut-off guest
domains 1
A MKDIR "/local/domain/1\0"
A SET_PERMS "/local/domain/1\0n1\0"
A INTRODUCE "1\04660\03\0"
G1 READ "/local/domain/1\0"
G1 poke req_prod 5000
G1 ring
A INTRODUCE "1\04660\03\0"
G1 ring
G1 raw "\x02\x00\x00\x00\x10\x00\x00\x00\x00\x00\x00\x00\x10\x00\x00\x00/local/domain/1\x00"
G1 ring
A RELEASE "1\0"
A INTRODUCE "1\04660\03\0"
G1 ring

case permission ids at the edges of the integer range
A WRITE "/pe\0"
A SET_PERMS "/pe\0n0\0r-1\0b4294967295\0w32752\0"
A GET_PERMS "/pe\0"
A SET_PERMS "/pe\0n0\0r99999999999\0"
A GET_PERMS "/pe\0"
A SET_PERMS "/pe\0n0\0r 7\0"
A SET_PERMS "/pe\0n0\0r+7\0"
A GET_PERMS "/pe\0"
A SET_PERMS "/pe\0n-1\0"
A SET_PERMS "/pe\0b0\0"
A GET_PERMS "/pe\0"
