//! Routing: which outputs an alert goes to. Routes are tried in config order; the first that
//! matches wins, unless it says `continue = true`, in which case the next ones are tried too.
//! An alert that no route matches takes the default route, to every output, so a gap in the
//! routes never drops an alert.

use serde_json::Value;

use crate::config::{AlertMatcher, Config, Grouping, RouteConfig};

/// An [`AlertMatcher`] ready to test alerts (account globs compiled).
#[derive(Clone, Debug)]
pub struct Matcher {
    spec: AlertMatcher,
    accounts: Vec<glob::Pattern>,
}

impl Matcher {
    pub fn new(spec: &AlertMatcher) -> Result<Matcher, String> {
        let accounts = spec
            .account
            .iter()
            .map(|p| glob::Pattern::new(p).map_err(|e| format!("account glob `{p}`: {e}")))
            .collect::<Result<_, _>>()?;
        Ok(Matcher { spec: spec.clone(), accounts })
    }

    /// Every listed field matches (an empty list matches anything). `alert` is the alert
    /// contract as JSON.
    pub fn matches(&self, alert: &Value) -> bool {
        let field = |name: &str| alert[name].as_str().unwrap_or("");
        let any = |list: &[String], value: &str| list.is_empty() || list.iter().any(|v| v == value);
        any_of(&self.spec.category, field("category"), |c| c.as_str())
            && any_of(&self.spec.severity, field("severity"), |s| s.as_str())
            && any(&self.spec.detector, field("detector"))
            && any(&self.spec.tenant, field("tenant"))
            && (self.accounts.is_empty() || self.accounts.iter().any(|p| p.matches(field("account"))))
    }

    pub fn spec(&self) -> &AlertMatcher {
        &self.spec
    }
}

fn any_of<T>(list: &[T], value: &str, name: impl Fn(&T) -> &'static str) -> bool {
    list.is_empty() || list.iter().any(|v| name(v) == value)
}

#[derive(Clone, Debug)]
pub struct Route {
    pub name: String,
    pub matcher: Matcher,
    pub outputs: Vec<String>,
    pub continue_matching: bool,
    pub grouping: Grouping,
}

impl Route {
    fn new(config: &RouteConfig) -> Result<Route, String> {
        Ok(Route {
            name: config.name.clone(),
            matcher: Matcher::new(&config.matcher).map_err(|e| format!("route `{}`: {e}", config.name))?,
            outputs: config.outputs.clone(),
            continue_matching: config.continue_matching,
            grouping: config.grouping(),
        })
    }
}

#[derive(Clone, Debug)]
pub struct Router {
    routes: Vec<Route>,
    default: Route,
}

impl Router {
    /// The routes of a validated config.
    pub fn new(config: &Config) -> Result<Router, String> {
        Ok(Router {
            routes: config.routes.iter().map(Route::new).collect::<Result<_, _>>()?,
            default: Route::new(&RouteConfig::default_route(config.output_names()))?,
        })
    }

    /// The routes `alert` takes, in order.
    pub fn routes_for(&self, alert: &Value) -> Vec<&Route> {
        let mut taken = Vec::new();
        for route in &self.routes {
            if route.matcher.matches(alert) {
                taken.push(route);
                if !route.continue_matching {
                    return taken;
                }
            }
        }
        if taken.is_empty() {
            taken.push(&self.default);
        }
        taken
    }

    /// The first route that sends `alert` to `output`, if any does.
    pub fn route_to(&self, alert: &Value, output: &str) -> Option<&Route> {
        self.routes_for(alert).into_iter().find(|r| r.outputs.iter().any(|o| o == output))
    }

    /// A configured route by name (`alert test --route`).
    pub fn named(&self, name: &str) -> Option<&Route> {
        self.routes.iter().chain([&self.default]).find(|r| r.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config(routes: &str) -> Config {
        let text = format!(
            r#"
[kafka]
brokers = "localhost:9092"
[[topics]]
name = "audit.events"
[dead_letter]
topic = "dl"
[[outputs]]
name = "pager"
type = "file"
path = "/tmp/pager.jsonl"
[[outputs]]
name = "siem"
type = "file"
path = "/tmp/siem.jsonl"
{routes}
"#
        );
        crate::config::load_from(&text, "test", &[]).unwrap()
    }

    fn alert(severity: &str, account: &str) -> Value {
        json!({"severity": severity, "category": "failed_auth", "detector": "failed-auth-burst", "account": account})
    }

    #[test]
    fn first_match_wins_and_continue_goes_on() {
        let router = Router::new(&config(
            r#"
[[routes]]
name = "critical"
match = { severity = ["critical"] }
outputs = ["pager"]
continue = true
[[routes]]
name = "ci"
match = { account = ["ci-*"] }
outputs = ["siem"]
[[routes]]
name = "rest"
outputs = ["siem"]
"#,
        ))
        .unwrap();
        let names = |a: &Value| router.routes_for(a).iter().map(|r| r.name.clone()).collect::<Vec<_>>();
        assert_eq!(names(&alert("critical", "ci-deploy")), ["critical", "ci"]);
        assert_eq!(names(&alert("low", "ci-deploy")), ["ci"]);
        assert_eq!(names(&alert("low", "billing")), ["rest"]);
        assert!(router.route_to(&alert("low", "billing"), "pager").is_none());
        assert_eq!(router.route_to(&alert("critical", "billing"), "pager").unwrap().name, "critical");
    }

    #[test]
    fn an_alert_no_route_matches_goes_to_every_output() {
        let router = Router::new(&config(
            r#"
[[routes]]
name = "critical"
match = { severity = ["critical"], tenant = ["acme"] }
outputs = ["pager"]
"#,
        ))
        .unwrap();
        let routes = router.routes_for(&alert("critical", "x"));
        assert_eq!(routes.len(), 1);
        assert_eq!(routes[0].name, "default");
        assert_eq!(routes[0].outputs, ["pager", "siem"]);
        let mut acme = alert("critical", "x");
        acme["tenant"] = json!("acme");
        assert_eq!(router.routes_for(&acme)[0].name, "critical");
    }
}
