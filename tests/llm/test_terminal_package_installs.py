"""Package installs and upgrades change the system: the terminal-command generator's local analysis
labels them "caution" (its own rules say so), so a model calling them "safe" cannot make them so."""

import pytest

from llm.terminal.danger import analyze, combine

INSTALLS = [
    "pip install requests",
    "pip3 install -U numpy",
    "python -m pip install -r requirements.txt",
    "apt-get install -y nginx",
    "sudo apt-get install -y bash",
    "apt install curl",
    "brew install jq",
    "npm install -g typescript",
    "npm i lodash",
    "yarn add react",
    "pnpm add vite",
    "cargo install ripgrep",
    "dnf install git",
    "apk add --no-cache tzdata",
    "gem install rails",
    "conda install pandas",
    "pacman -Syu",
    "pacman -S firefox",
    "apt-get dist-upgrade -y",
]
SAFE = ["pip list", "pip show requests", "apt list --installed", "pacman -Ss firefox", "npm ls", "brew list"]


@pytest.mark.parametrize("command", INSTALLS)
def test_package_installs_are_caution(command):
    found = analyze(command)
    assert found.level == "caution", (command, found)
    assert combine("safe", found.level) == "caution"


@pytest.mark.parametrize("command", SAFE)
def test_listing_packages_stays_safe(command):
    assert analyze(command).level == "safe"


def test_installing_an_essential_package_is_not_called_a_removal():
    assert "removes essential" not in " ".join(analyze("apt-get install -y bash").reasons)
