# crucible sandbox launcher for Go (inside the image as /opt/crucible/launch-go.sh).
# Protocol (see crucible_ray/languages.py): "R" on stderr when ready, wait for one line on
# stdin, "G" on stderr, then build /code/main.go and run it with the rest of stdin.
printf R >&2
IFS= read -r _ || exit 0
printf G >&2
cd /tmp || exit
go build -o /tmp/main /code/main.go || exit
exec /tmp/main
