//! Registry credentials as the user gives them, to `push` and `bench` alike: `--username`
//! with the password on standard input, else the Docker config's entry for the registry
//! (`$DOCKER_CONFIG/config.json` or `~/.docker/config.json`, as `docker login` writes it),
//! else none.

use anyhow::{Context, Result};
use oci_client::secrets::RegistryAuth;
use std::path::PathBuf;

#[derive(clap::Args, Debug, Default)]
pub struct CredentialArgs {
    /// User name for the registry; the password is read from standard input
    /// (--password-stdin). Without it, the registry's entry in the Docker config
    /// ($DOCKER_CONFIG/config.json or ~/.docker/config.json) is used, if there is one.
    #[arg(long, requires = "password_stdin")]
    pub username: Option<String>,
    /// Read the password for --username from standard input (one line).
    #[arg(long, requires = "username")]
    pub password_stdin: bool,
}

/// The credentials read once (standard input can be read once), for whichever registry the
/// command turns out to talk to.
pub enum Credentials {
    Password { username: String, password: String },
    DockerConfig(Option<PathBuf>),
}

impl Credentials {
    pub fn read(args: &CredentialArgs) -> Result<Credentials> {
        Ok(match &args.username {
            Some(username) => {
                if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
                    anyhow::bail!(
                        "--password-stdin reads the password from a pipe, not a terminal (it would echo): e.g. `cat password-file | … --username {username} --password-stdin`"
                    );
                }
                let mut password = String::new();
                std::io::stdin()
                    .read_line(&mut password)
                    .context("cannot read the password from standard input")?;
                let password = password.trim_end_matches(['\r', '\n']).to_owned();
                if password.is_empty() {
                    anyhow::bail!(
                        "--password-stdin read an empty password: pipe it in, e.g. `cat token | wnb … --username {username} --password-stdin`"
                    );
                }
                Credentials::Password {
                    username: username.clone(),
                    password,
                }
            }
            None => Credentials::DockerConfig(
                std::env::var_os("DOCKER_CONFIG")
                    .map(PathBuf::from)
                    .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker")))
                    .map(|d| d.join("config.json")),
            ),
        })
    }

    /// What to present to `registry` (HOST[:PORT]).
    pub fn for_registry(&self, registry: &str) -> Result<RegistryAuth> {
        Ok(match self {
            Credentials::Password { username, password } => {
                RegistryAuth::Basic(username.clone(), password.clone())
            }
            Credentials::DockerConfig(Some(config)) => {
                oci_push::docker_config_auth(config, registry)?.unwrap_or(RegistryAuth::Anonymous)
            }
            Credentials::DockerConfig(None) => RegistryAuth::Anonymous,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_docker_config_entry_is_used_for_its_registry_only() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.json");
        // base64("ann:s3cret")
        std::fs::write(
            &config,
            r#"{"auths":{"registry.example:5000":{"auth":"YW5uOnMzY3JldA=="}}}"#,
        )
        .unwrap();
        let credentials = Credentials::DockerConfig(Some(config));
        assert!(matches!(
            credentials.for_registry("registry.example:5000").unwrap(),
            RegistryAuth::Basic(u, p) if u == "ann" && p == "s3cret"
        ));
        assert!(matches!(
            credentials.for_registry("other.example").unwrap(),
            RegistryAuth::Anonymous
        ));
    }

    #[test]
    fn docker_hub_is_found_under_its_index_url_and_a_credential_helper_is_said() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.json");
        std::fs::write(
            &config,
            r#"{"auths":{"https://index.docker.io/v1/":{"auth":"YW5uOnMzY3JldA=="},"ghcr.io":{}},
                "credsStore":"desktop","credHelpers":{"quay.io":"pass"}}"#,
        )
        .unwrap();
        let credentials = Credentials::DockerConfig(Some(config));
        assert!(matches!(
            credentials.for_registry("docker.io").unwrap(),
            RegistryAuth::Basic(u, _) if u == "ann"
        ));
        for (registry, helper) in [("ghcr.io", "desktop"), ("quay.io", "pass")] {
            let err = credentials.for_registry(registry).unwrap_err().to_string();
            assert!(
                err.contains(&format!("docker-credential-{helper}")) && err.contains("--username"),
                "{err}"
            );
        }
        // A registry the config says nothing of: anonymous.
        assert!(matches!(
            credentials.for_registry("registry.example").unwrap(),
            RegistryAuth::Anonymous
        ));
    }

    #[test]
    fn a_missing_docker_config_means_anonymous() {
        let credentials = Credentials::DockerConfig(Some("/nonexistent/config.json".into()));
        assert!(matches!(
            credentials.for_registry("registry.example").unwrap(),
            RegistryAuth::Anonymous
        ));
    }
}
