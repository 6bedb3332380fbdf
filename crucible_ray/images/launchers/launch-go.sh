# crucible sandbox launcher for Go (inside the image as /opt/crucible/launch-go.sh).
# Protocol (crucible_ray/sandbox/backend.py): "R" on stderr when ready; read "<length>\n" and the
# code from stdin, save it as /tmp/main.go, "G" on stderr, then build it and run it with the
# rest of stdin as its stdin.
printf R >&2
IFS= read -r size || exit 0
case $size in ''|*[!0-9]*) exit 2 ;; esac
cd /tmp || exit
# dd with fullblock reads exactly $size bytes and not one more: the rest is the program's stdin.
dd of=/tmp/main.go bs="$size" count=1 iflag=fullblock status=none || exit
printf G >&2
go build -o /tmp/main /tmp/main.go || exit
exec /tmp/main
