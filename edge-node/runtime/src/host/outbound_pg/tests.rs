use super::*;

fn allowed(entries: &[&str]) -> AllowedHosts {
    AllowedHosts::parse(&entries.iter().map(|e| (*e).to_owned()).collect::<Vec<_>>()).unwrap()
}

fn denial(address: &str, rules: &[&str]) -> String {
    match checked_config(address, &allowed(rules)) {
        Err(Error::ConnectionFailed(message)) => message,
        Err(other) => panic!("{address}: unexpected error {other:?}"),
        Ok(_) => panic!("{address}: allowed"),
    }
}

#[test]
fn urls_and_key_value_strings_are_checked_by_host_and_port() {
    let rules = ["postgres://db.example.com:5432"];
    for address in [
        "postgres://user:pw@db.example.com/app",
        "postgresql://user@db.example.com:5432/app",
        "host=db.example.com user=app dbname=app",
        "host=DB.Example.com port=5432 user=app",
    ] {
        assert!(
            checked_config(address, &allowed(&rules)).is_ok(),
            "{address}"
        );
    }
    assert_eq!(
        denial("postgres://user@db.example.com:6543/app", &rules),
        "address postgres://db.example.com:6543 is not permitted"
    );
    assert_eq!(
        denial("host=other.example.com user=app", &rules),
        "address postgres://other.example.com is not permitted"
    );
}

#[test]
fn every_host_of_a_multi_host_string_must_be_allowed() {
    let rules = ["postgres://a.example.com:5432"];
    assert_eq!(
        denial(
            "host=a.example.com,b.example.com port=5432 user=app",
            &rules
        ),
        "address postgres://b.example.com:5432 is not permitted"
    );
}

#[test]
fn hostaddr_cannot_send_the_connection_elsewhere() {
    let rules = ["postgres://db.example.com:5432"];
    assert_eq!(
        denial(
            "host=db.example.com hostaddr=10.0.0.5 port=5432 user=app",
            &rules
        ),
        "address postgres://10.0.0.5:5432 is not permitted"
    );
}

#[test]
fn unix_sockets_and_garbage_are_refused_before_any_connection() {
    let rules = ["postgres://*:*"];
    assert_eq!(
        denial("host=/var/run/postgresql user=app", &rules),
        "Unix sockets are not supported on WebAssembly"
    );
    assert!(checked_config("postgres://[::1", &allowed(&rules)).is_err());
}

#[test]
fn wildcard_and_cidr_rules_apply() {
    assert!(
        checked_config(
            "postgres://u@10.1.2.3:5432/db",
            &allowed(&["postgres://10.0.0.0/8:5432"])
        )
        .is_ok()
    );
    assert!(
        checked_config(
            "postgres://u@127.0.0.1:5433/db",
            &allowed(&["postgres://127.0.0.1:*"])
        )
        .is_ok()
    );
    assert!(
        checked_config(
            "postgres://u@127.0.0.1:5433/db",
            &allowed(&["redis://127.0.0.1:*"])
        )
        .is_err()
    );
}
