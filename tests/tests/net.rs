//! Networking: the virtio-net driver comes up on QEMU's user network
//! (`restrict=on`) and exchanges frames with it.

use std::time::Duration;

use llmos_qemu::{Config, Outcome};
use llmos_tests::{boot_with, image};

const TIMEOUT: Duration = Duration::from_secs(120);

#[test]
fn virtio_net_comes_up_exchanges_arp_and_gets_a_dhcp_lease() {
    let mut cfg = Config::new(image("test/net-link-bios.img"));
    cfg.network = Some(Vec::new());
    cfg.memory_mib = 256;
    let b = boot_with("net-link", &cfg, TIMEOUT);
    b.expect_outcome(&Outcome::Success);
    b.expect_line(
        r"\[\d+\.\d{6}\] net: virtio-net at [0-9a-f:.]+: MAC 52:54:00:12:34:56, link up, \d+-entry queues",
    );
    b.expect_line(
        r"\[\d+\.\d{6}\] net: link check: 10\.0\.2\.2 is at 52:55:0a:00:02:02 \(ARP reply after \d+ frame\(s\)\); 1 transmission\(s\) reclaimed",
    );
    b.expect_line(r"\[\d+\.\d{6}\] net: DHCP: asking for an address");
    // With `restrict=on` QEMU's DHCP server offers no router and no DNS.
    b.expect_line(r"\[\d+\.\d{6}\] net: DHCP: 10\.0\.2\.15/24, no gateway, no DNS server");
    b.expect_line(r"\[\d+\.\d{6}\] test: configured: 10\.0\.2\.15/24, no gateway, no DNS server");
}

#[test]
fn without_a_card_networking_is_off() {
    let mut cfg = Config::new(image("test/net-link-bios.img"));
    cfg.memory_mib = 256;
    let b = boot_with("net-none", &cfg, TIMEOUT);
    b.expect_outcome(&Outcome::Success);
    b.expect_line(r"\[\d+\.\d{6}\] net: no network card; networking is off");
    b.expect_line(r"\[\d+\.\d{6}\] test: no network card");
}
