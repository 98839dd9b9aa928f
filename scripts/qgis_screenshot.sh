#!/usr/bin/env bash
# What an analyst sees: QGIS desktop under Xvfb with a synthetic scene, its MS-CAM heatmap and
# boxes (styled as the plugin styles them) and the MS-CAM dock, saved as docs/qgis_screenshot.png.
#
#   scripts/qgis_screenshot.sh [OUT.png]     (env: MODEL=card.json, PROFILE=dense, WAIT=30)
#
# Needs xvfb-run and ImageMagick's `import` (apt-get install xvfb imagemagick) and `make setup`.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT_PNG=$(realpath -m "${1:-docs/qgis_screenshot.png}")
WORK=$ROOT/build/screenshot
PY=$ROOT/.venv/bin/python
SITE=$($PY -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp/mscam-xdg-$(id -u)}
mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
for tool in xvfb-run import; do
  command -v $tool >/dev/null || { echo "$tool is missing: apt-get install xvfb imagemagick" >&2; exit 1; }
done

rm -rf "$WORK" && mkdir -p "$WORK/plugins" "$WORK/profile" "$(dirname "$OUT_PNG")"
QT_QPA_PLATFORM=offscreen $PY scripts/qgis_screenshot_project.py "$WORK" \
  ${MODEL:+--model "$MODEL"} --profile "${PROFILE:-dense}"

# The plugin from the working tree, enabled in a private profile (as `make qgis` does).
ln -sfn "$ROOT/mscam_qgis" "$WORK/plugins/mscam_qgis"
ln -sfn ../metadata.txt "$ROOT/mscam_qgis/metadata.txt"
export QGIS_PLUGINPATH=$WORK/plugins QGIS_CUSTOM_CONFIG_PATH=$WORK/profile
export PYTHONPATH=$ROOT/core:$SITE
QT_QPA_PLATFORM=offscreen /usr/bin/qgis_process.bin plugins enable mscam_qgis >/dev/null
# A first start would show the tips and news panels: not what an analyst works with.
# The tips setting is named after the QGIS release (showTips322 on 3.22, showTips340 on 3.40).
INI=$WORK/profile/profiles/default/QGIS/QGIS3.ini
RELEASE=$(QT_QPA_PLATFORM=offscreen $PY -c 'from qgis.core import Qgis; print(Qgis.QGIS_VERSION_INT // 100)')
printf '[qgis]\nshowTips%s=false\ncheckVersion=false\n' "$RELEASE" >>"$INI"

xvfb-run -a -s "-screen 0 1400x900x24" bash -c '
  env -u QT_QPA_PLATFORM qgis --nologo --noversioncheck \
    --project "$0/project.qgz" --code "$0/startup.py" >"$0/qgis.log" 2>&1 &
  pid=$!
  sleep "${WAIT:-30}"
  import -window root "$1"
  kill $pid
' "$WORK" "$OUT_PNG"
echo "wrote $OUT_PNG"
