//! `compose.yaml`, the stack a user runs on their own machine with every
//! plugin: images cannot be pulled here, so what can be checked is: the
//! file parses, and its settings agree with what `opensearch apply` and the
//! walk-through of docs/opensearch.md needs (the official 2.19 images, which bundle the
//! plugins; security on, TLS only, the admin password from the
//! environment; both ports on this machine alone).

use crate::util::root;
use yaml_rust2::{Yaml, YamlLoader};

fn compose() -> Yaml {
    let text = std::fs::read_to_string(root().join("compose.yaml")).unwrap();
    let mut docs = YamlLoader::load_from_str(&text).expect("compose.yaml parses as YAML");
    assert_eq!(docs.len(), 1);
    docs.remove(0)
}

fn text<'a>(y: &'a Yaml, what: &str) -> &'a str {
    y.as_str()
        .unwrap_or_else(|| panic!("{what} is not a string: {y:?}"))
}

#[test]
fn the_compose_stack_runs_every_plugin_with_security_on_this_machine_alone() {
    let c = compose();
    let os = &c["services"]["opensearch"];
    let dashboards = &c["services"]["dashboards"];
    // The official images: the plugins trailwatch calls come bundled, at
    // the version the recordings of the real plugins were made with.
    let image = text(&os["image"], "opensearch.image");
    assert!(
        image.starts_with("opensearchproject/opensearch:2.19."),
        "{image}"
    );
    let version = image.rsplit(':').next().unwrap();
    assert!(
        root()
            .join("../shared/reference/opensearch-2.19.4-plugins")
            .to_string_lossy()
            .contains(version),
        "the recordings' version: {version}"
    );
    let dashboards_image = text(&dashboards["image"], "dashboards.image");
    assert_eq!(
        dashboards_image,
        format!("opensearchproject/opensearch-dashboards:{version}"),
        "Dashboards at the cluster's version"
    );
    // Security stays on; the admin password comes from the environment.
    let env = os["environment"].as_hash().expect("environment as a map");
    for (k, v) in env {
        let (k, v) = (text(k, "a key"), format!("{v:?}"));
        assert!(
            !k.to_ascii_uppercase().contains("DISABLE") && !k.contains("security.disabled"),
            "{k}={v}"
        );
    }
    let password = text(
        &os["environment"]["OPENSEARCH_INITIAL_ADMIN_PASSWORD"],
        "the admin password",
    );
    assert!(
        password.starts_with("${OPENSEARCH_PASSWORD:?"),
        "from the environment, required, never written here: {password}"
    );
    // TLS only: the health check and Dashboards speak https to the node.
    let health = format!("{:?}", os["healthcheck"]["test"]);
    assert!(health.contains("https://localhost:9200"), "{health}");
    let hosts = text(
        &dashboards["environment"]["OPENSEARCH_HOSTS"],
        "OPENSEARCH_HOSTS",
    );
    assert!(hosts.contains("https://opensearch:9200"), "{hosts}");
    // Nothing public: both ports on the loopback address.
    let ports = |svc: &Yaml| -> Vec<String> {
        svc["ports"]
            .as_vec()
            .expect("ports")
            .iter()
            .map(|p| text(p, "a port").to_owned())
            .collect()
    };
    assert_eq!(ports(os), ["127.0.0.1:9200:9200"]);
    assert_eq!(ports(dashboards), ["127.0.0.1:5601:5601"]);
    // The walk-through of docs/opensearch.md uses these very addresses and
    // the CA file the header says how to copy out.
    let readme = std::fs::read_to_string(root().join("docs/opensearch.md")).unwrap();
    for needed in [
        "docker compose up -d --wait",
        "--opensearch-url https://localhost:9200",
        "--opensearch-ca-cert root-ca.pem",
        "--dashboards-url http://localhost:5601",
        "http://localhost:5601",
        "detectors backtest",
        "monitors test",
    ] {
        assert!(
            readme.contains(needed),
            "docs/opensearch.md's Compose path lacks {needed:?}"
        );
    }
    let header = std::fs::read_to_string(root().join("compose.yaml")).unwrap();
    assert!(header.contains(
        "docker compose cp opensearch:/usr/share/opensearch/config/root-ca.pem ./root-ca.pem"
    ));
}
