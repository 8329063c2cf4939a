//! The nft batches against the real kernel (as root): the base tables and a
//! container's chains install, replace and remove as atomic transactions,
//! and a failing batch changes nothing.

use std::net::Ipv4Addr;
use std::process::Command;

use cubby_network::{
    BaseRules, Batch, ContainerRules, EgressGuard, EgressPolicy, L4, Match, NftCli, Nftables, Verdict,
};

fn root(test: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    assert!(
        !std::env::var("CI").is_ok_and(|v| v == "true" || v == "1"),
        "{test} needs root and CI=true forbids skipping it"
    );
    eprintln!("\n*** SKIPPED {test}: needs root ***\n");
    false
}

fn list(table: &str) -> String {
    let out = Command::new("nft").args(["list", "table", "inet", table]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

struct Cleanup(String);
impl Drop for Cleanup {
    fn drop(&mut self) {
        for family in ["inet", "bridge"] {
            let _ = Command::new("nft").args(["delete", "table", family, &self.0]).status();
        }
    }
}

fn container(table: &str, id: &str, last: u8, ingress_port: u16) -> ContainerRules {
    ContainerRules {
        table: table.into(),
        id: id.into(),
        address: Ipv4Addr::new(10, 250, 0, last),
        veth: format!("{table}-{last}"),
        egress_policy: EgressPolicy::Open { dns: vec!["192.0.2.53".parse().unwrap()] },
        egress: vec![
            Match {
                verdict: Verdict::Reject,
                l4: L4::Any,
                ports: vec![],
                peer: Some("203.0.113.0/24".parse().unwrap()),
            },
            Match { verdict: Verdict::Drop, l4: L4::Udp, ports: vec![(5000, 5010), (6000, 6000)], peer: None },
            Match {
                verdict: Verdict::Accept,
                l4: L4::Icmp,
                ports: vec![],
                peer: Some("2001:db8::/32".parse().unwrap()),
            },
            Match { verdict: Verdict::Accept, l4: L4::Any, ports: vec![], peer: None },
        ],
        ingress: vec![Match {
            verdict: Verdict::Accept,
            l4: L4::Tcp,
            ports: vec![(ingress_port, ingress_port)],
            peer: Some("10.250.0.1/32".parse().unwrap()),
        }],
    }
}

#[tokio::test]
async fn base_and_container_chains_install_replace_and_remove() {
    if !root("base_and_container_chains_install_replace_and_remove") {
        return;
    }
    let table = format!("nt{}", std::process::id() % 100_000);
    let _cleanup = Cleanup(table.clone());
    let nft = NftCli::new();
    let base = BaseRules {
        table: table.clone(),
        bridge: format!("{table}-br"),
        veth_prefix: format!("{table}-"),
        subnet: "10.250.0.0/24".parse().unwrap(),
        guard: EgressGuard::new(None, vec!["10.77.0.0/16".parse().unwrap()], vec!["192.0.2.53".parse().unwrap()]),
    };
    let mut batch = base.batch();
    container(&table, "ca", 2, 8080).install(&mut batch);
    container(&table, "cb", 3, 8080).install(&mut batch);
    nft.apply(&table, &batch).await.unwrap();
    let text = list(&table);
    assert!(text.contains("chain e_ca") && text.contains("chain i_cb"), "{text}");
    assert!(text.contains("10.250.0.2 : jump e_ca"), "{text}");
    assert!(text.contains("169.254.0.0/16") && text.contains("10.77.0.0/16") && text.contains("jump guard"), "{text}");
    let bridge = Command::new("nft").args(["list", "table", "bridge", &table]).output().unwrap();
    let bridge = String::from_utf8_lossy(&bridge.stdout);
    assert!(bridge.contains("02:cb:0a:fa:00:02") && bridge.contains("ether saddr"), "{bridge}");

    // Replacing one container's rules touches only its chains.
    let mut b = Batch::new();
    container(&table, "ca", 2, 9090).install(&mut b);
    nft.apply(&table, &b).await.unwrap();
    let text = list(&table);
    assert!(text.contains("9090") && text.contains("8080"), "cb keeps 8080, ca now has 9090:\n{text}");

    // A failing batch changes nothing.
    let mut bad = Batch::new();
    container(&table, "ca", 2, 7070).install(&mut bad);
    bad.add(serde_json::json!({ "rule": { "family": "inet", "table": table, "chain": "no_such_chain", "expr": [{ "accept": null }] } }));
    assert!(nft.apply(&table, &bad).await.is_err());
    assert!(!list(&table).contains("7070"), "a failed transaction left a change");

    // Removal is idempotent.
    for _ in 0..2 {
        let mut b = Batch::new();
        ContainerRules::remove(&table, "ca", Ipv4Addr::new(10, 250, 0, 2), &format!("{table}-2"), &mut b);
        nft.apply(&table, &b).await.unwrap();
    }
    let text = list(&table);
    assert!(!text.contains("e_ca") && !text.contains("10.250.0.2 :"), "{text}");
    assert!(text.contains("e_cb"));

    assert!(nft.table_exists(&table).await.unwrap(), "control: the table is there before it is deleted");
    nft.delete_table(&table).await.unwrap();
    nft.delete_table(&table).await.unwrap();
    assert!(!nft.table_exists(&table).await.unwrap());
}
