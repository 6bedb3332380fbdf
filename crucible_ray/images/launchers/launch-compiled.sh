# crucible sandbox launcher for compiled languages (inside the image as
# /opt/crucible/launch-compiled.sh). Arguments: the source file name, the compile command (a
# shell command line run in /build), then the program's command.
#
# Protocol (crucible_ray/sandbox/stages.py): "R" on stderr when ready; read "<length>\n" and the
# code from stdin into /build/<source>, "G" on stderr; compile with the compile stage's limits,
# the compiler's output (stdout and stderr, interleaved, capped) in a log, its caches under
# /build/.cache (removed after the compile); report it on stderr as
# "C", the exit status in 3 digits, the length sent in 8 digits, 1 if the log was longer (0 if
# not), then the log. Then wait for the
# host's "<process limit>\n" (sent once it has lowered the sandbox's limits to the run's), lower
# this process's own process limit to it (never to be raised again), "G" on stderr, and run the
# program with the rest of stdin as its stdin.
LOG_CAP=65536
source=$1 compile=$2
shift 2
printf R >&2
IFS= read -r size || exit 0
case $size in '' | *[!0-9]*) exit 2 ;; esac
cd /build || exit
# dd with fullblock reads exactly $size bytes and not one more: the rest is the program's stdin.
dd of="/build/$source" bs="$size" count=1 iflag=fullblock status=none || exit
printf G >&2
sh -c "$compile" </dev/null >/build/.compile.log 2>&1
status=$?
[ "$status" -gt 255 ] && status=255
total=$(wc -c </build/.compile.log)
length=$((total < LOG_CAP ? total : LOG_CAP))
printf 'C%03d%08d%d' "$status" "$length" "$((total > LOG_CAP))" >&2
head -c "$LOG_CAP" /build/.compile.log >&2
rm -rf /build/.compile.log /build/.cache  # the compiler's caches are not the program's memory
[ "$status" -eq 0 ] || exit 0
# The artifact is not the program's to change (it owns it: this keeps honest programs honest).
find /build -mindepth 1 -exec chmod a-w {} + 2>/dev/null
IFS= read -r processes || exit 0
case $processes in '' | *[!0-9]*) exit 2 ;; esac
ulimit -p "$processes" || exit 2
printf G >&2
exec "$@"
