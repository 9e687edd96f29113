"""Discovery logic without DNS: RFC 2782 order, the URLs of the DCs found, the server list replaced by a new
lookup, the [[directory]] domain keys, and the .env values init writes read back exactly."""

import random
from collections import Counter

import pytest
from dotenv import dotenv_values

from ssobridge.config import ConfigError, load
from ssobridge.directory.discovery import Found, Target, rfc2782_order, server_urls
from ssobridge.directory.servers import Servers
from ssobridge.init.write import env_value


def test_lower_priority_comes_first_whatever_the_weights():
    targets = [Target("b", 389, 10, 100), Target("a", 389, 0, 0), Target("c", 389, 5, 50)]
    assert [t.host for t in rfc2782_order(targets, random.Random(1))] == ["a", "c", "b"]


def test_within_a_priority_targets_are_drawn_in_proportion_to_their_weight():
    targets = [Target("heavy", 389, 0, 300), Target("light", 389, 0, 100), Target("zero", 389, 0, 0)]
    chance = random.Random(7)
    firsts = Counter(rfc2782_order(targets, chance)[0].host for _ in range(4000))
    assert set(firsts) == {"heavy", "light", "zero"}
    assert 2.5 < firsts["heavy"] / firsts["light"] < 3.5  # 3:1 by weight
    assert firsts["zero"] < 40  # weight 0: chosen only when the draw is exactly 0 (1 in 401)


def test_every_target_is_listed_once():
    targets = [Target(f"dc{i}", 389, i % 2, i) for i in range(6)]
    assert sorted(t.host for t in rfc2782_order(targets)) == sorted(t.host for t in targets)


def test_found_dcs_are_ldaps_on_636_by_name_or_starttls_on_the_srv_port():
    found = Found("_ldap._tcp.dc._msdcs.corp.test",
                  (Target("dc2.corp.test", 389), Target("DC1.corp.test", 3268), Target("dc2.corp.test", 389)), ())
    assert server_urls(found, start_tls=False) == ("ldaps://dc2.corp.test:636", "ldaps://dc1.corp.test:636")
    assert server_urls(found, start_tls=True) == ("ldap://dc2.corp.test:389", "ldap://dc1.corp.test:3268")


def test_a_new_lookup_keeps_known_servers_and_their_state_adds_new_ones_last_and_drops_gone_ones():
    servers = Servers("corp", ("ldaps://a:636", "ldaps://b:636"), 30, 1, lambda url: None)
    state_b = servers.order[1]
    servers.failed(state_b, "refused", 0.0, claimed=False)
    servers.replace(("ldaps://c:636", "ldaps://b:636"))
    assert [s.url for s in servers.order] == ["ldaps://b:636", "ldaps://c:636"]
    assert servers.order[0] is state_b and state_b.down_until > 0
    assert servers.knows("ldaps://c:636") and not servers.knows("ldaps://a:636")


def write(folder, text):
    path = folder / "ssobridge.toml"
    path.write_text(text, encoding="utf-8")
    return path


DOMAIN = """
[smartertrack]
web_service_password = "x"
[[directory]]
type = "active_directory"
base_dn = "DC=corp,DC=test"
bind_dn = "CN=svc,DC=corp,DC=test"
bind_password = "p"
"""


def test_a_directory_names_its_domain_and_nameservers_instead_of_urls(tmp_path):
    config = load(write(tmp_path, DOMAIN + 'domain = "Corp.Test."\nnameservers = ["10.0.0.1", "::1"]\n'
                                           "discovery_refresh_seconds = 60\n"))
    directory = config.directories[0]
    assert (directory.urls, directory.domain, directory.nameservers, directory.discovery_refresh_seconds) == \
        ((), "corp.test", ("10.0.0.1", "::1"), 60.0)


@pytest.mark.parametrize("lines, problem", [
    ("", "directory[0].urls: is required (a list such as [\"ldaps://dc1.example.com\"]), or domain, whose DCs are "
         "found through DNS"),
    ('domain = "corp.test"\nurls = ["ldaps://dc1.corp.test"]\n',
     "directory[0].domain: and urls exclude each other: name the servers, or the domain to find them in"),
    ('domain = "corp.test"\nnameservers = ["dns.corp.test"]\n',
     "directory[0].nameservers: 'dns.corp.test' is not an IP address"),
])
def test_domain_problems_are_said_with_their_key(tmp_path, lines, problem):
    with pytest.raises(ConfigError) as error:
        load(write(tmp_path, DOMAIN + lines))
    assert error.value.problems == [problem]


@pytest.mark.parametrize("password", ["plain", "p@ss ${HOME} #1", "it's \"quoted\" \\n", "'", '\\"', "x$y'z"])
def test_env_values_init_writes_read_back_exactly(tmp_path, password):
    (tmp_path / ".env").write_text(f"P={env_value(password)}\n")
    assert dotenv_values(tmp_path / ".env", interpolate=False)["P"] == password
