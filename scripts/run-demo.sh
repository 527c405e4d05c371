#!/bin/sh
# run-demo.sh - create (once) a demo instance in ./run and start it in the
# foreground, SMTP on 127.0.0.1:2525. Ctrl-C stops it. Used by "make run".
set -eu
BUILD=${1:-build}
top=$(cd "$(dirname "$0")/.." && pwd)
dir="$top/run"
postern="$top/$BUILD/bin/postern"
if [ ! -f "$dir/main.cf" ]; then
    "$postern" init "$dir" --listen 127.0.0.1:2525
fi
echo "postern demo: instance $dir, SMTP on 127.0.0.1:2525, log $dir/log/maillog"
echo "postern demo: try: swaks --server 127.0.0.1:2525 --to bob@localhost   (Ctrl-C stops)"
echo "postern demo: mail for NAME@localhost lands in $dir/mail/NAME/new/"
exec "$postern" -c "$dir" start-fg
