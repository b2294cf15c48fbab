# Shared by scripts/*: install Debian packages that are missing (sudo only when
# not root), and configure a Meson build folder once, reconfiguring after.

# What building and testing mint needs from Debian 12.
MINT_PACKAGES=(g++ meson ninja-build cmake pkg-config
  libeigen3-dev libxtensor-dev xtl-dev libxsimd-dev
  doctest-dev libbenchmark-dev libopenblas-dev zlib1g-dev nlohmann-json3-dev
  python3 python3-numpy)

mint_install() {
  local missing=()
  for package in "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "Installing: ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# mint_configure DIR [meson options...]: set up DIR, or apply the options to an existing one.
mint_configure() {
  local dir=$1
  shift
  if [ -f "$dir/meson-private/coredata.dat" ]; then
    meson setup --reconfigure "$dir" "$@" >/dev/null
  else
    meson setup "$dir" "$@" >/dev/null
  fi
}
