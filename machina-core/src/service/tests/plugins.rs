//! Plugins: a plugin adds its own service and hooks at build time.

use super::*;

/// A plugin that brings a service of its own and hooks around it.
struct Audit {
    log: Log,
    rt: Runtime,
}

impl Plugin for Audit {
    fn register(self: Box<Self>, entrypoint: EntrypointBuilder) -> EntrypointBuilder {
        let (a, b) = (self.log.clone(), self.log.clone());
        entrypoint
            .service("audit", Scripted::new("audit", &self.rt, &self.log), &[])
            .pre_start(move |services| {
                let log = a.clone();
                async move {
                    log.lock()
                        .unwrap()
                        .push(format!("audit sees {:?}", services.services()))
                }
            })
            .post_stop(move |_| {
                let log = b.clone();
                async move { log.lock().unwrap().push("audit done".to_owned()) }
            })
    }
}

#[test]
fn a_plugin_adds_its_service_and_hooks_at_build_time() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let log: Log = Arc::default();
    let ep = Entrypoint::builder(&rt)
        .service("db", Scripted::new("db", &rt, &log), &[])
        .plugin(Audit {
            log: log.clone(),
            rt: rt.clone(),
        })
        .build()
        .unwrap();
    let outcome = mock.block_on(ep.run(async {})).unwrap();
    assert_eq!(outcome.exit_code, 0);
    let log = entries(&log);
    assert_eq!(log.first().unwrap(), "audit sees [\"db\", \"audit\"]");
    assert!(log.contains(&"ready audit".to_owned()) && log.contains(&"stopped audit".to_owned()));
    assert_eq!(log.last().unwrap(), "audit done");
}
