//! [`StackPlan`]: the pure graph of a service stack — who depends on whom,
//! checked once — and the orders that follow from it: the start stages
//! (each service after its dependencies) and the stop stages (each service
//! after its dependents). The [`Supervisor`](super::Supervisor) consults it
//! as services become ready or stop; nothing here runs or waits.

use std::collections::HashMap;
use std::sync::Arc;

use super::GraphError;

/// One service of the plan: its name and what it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Node {
    name: Arc<str>,
    deps: Vec<String>,
}

/// The dependency graph of a stack, validated: unique names, known
/// dependencies, no cycle.
///
/// A service starts once every dependency is ready, so services whose
/// dependencies are ready at the same time start together: the
/// [`start_stages`](Self::start_stages). It stops once every service that
/// depends on it has stopped, so the [`stop_stages`](Self::stop_stages) run
/// the graph the other way, and services with no dependency between them
/// stop at the same time — a stage of two services that each take 100 ms
/// to stop takes 100 ms.
///
/// # Examples
///
/// ```
/// use machina_core::service::StackPlan;
///
/// // A diamond: the api and the cache both need the db; the web needs both.
/// let plan = StackPlan::new([
///     ("db", vec![]),
///     ("api", vec!["db"]),
///     ("cache", vec!["db"]),
///     ("web", vec!["api", "cache"]),
/// ])
/// .unwrap();
/// assert_eq!(plan.start_stages(), [vec!["db"], vec!["api", "cache"], vec!["web"]]);
/// assert_eq!(plan.stop_stages(), [vec!["web"], vec!["api", "cache"], vec!["db"]]);
/// assert_eq!(plan.dependents("db"), ["api", "cache"]);
///
/// let cycle = StackPlan::new([("a", vec!["b"]), ("b", vec!["a"])]).unwrap_err();
/// assert_eq!(cycle.to_string(), "services depend on each other in a cycle: a -> b -> a");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StackPlan {
    /// In registration order.
    nodes: Vec<Node>,
    /// Each node's position in `nodes`, by name: finding one is a lookup,
    /// not a scan (a stack of 1 000 services consults it per service).
    index: HashMap<Arc<str>, usize>,
}

impl StackPlan {
    /// The plan of `services`, each a name and the names it depends on.
    ///
    /// # Errors
    /// [`GraphError`] for a duplicate name, a dependency that is not among
    /// the services, or a cycle (named in order).
    pub fn new<N, D, S>(services: impl IntoIterator<Item = (N, D)>) -> Result<Self, GraphError>
    where
        N: AsRef<str>,
        D: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let nodes = services
            .into_iter()
            .map(|(name, deps)| Node {
                name: Arc::from(name.as_ref()),
                deps: deps.into_iter().map(|d| d.as_ref().to_owned()).collect(),
            })
            .collect();
        let mut plan = StackPlan {
            nodes,
            index: HashMap::new(),
        };
        plan.validate()?;
        plan.reindex();
        Ok(plan)
    }

    fn validate(&self) -> Result<(), GraphError> {
        let mut seen = HashMap::new();
        for (i, node) in self.nodes.iter().enumerate() {
            if seen.insert(&*node.name, i).is_some() {
                return Err(GraphError::Duplicate(node.name.to_string()));
            }
        }
        for node in &self.nodes {
            if let Some(missing) = node.deps.iter().find(|d| !seen.contains_key(d.as_str())) {
                return Err(GraphError::UnknownDependency {
                    service: node.name.to_string(),
                    missing: missing.clone(),
                });
            }
        }
        match self.find_cycle(&seen) {
            Some(cycle) => Err(GraphError::Cycle(cycle)),
            None => Ok(()),
        }
    }

    /// A cycle, by depth-first search, named from its first service back to
    /// it.
    fn find_cycle(&self, index: &HashMap<&str, usize>) -> Option<Vec<String>> {
        #[derive(Clone, Copy, PartialEq, Eq)]
        enum Mark {
            New,
            OnPath,
            Done,
        }
        fn visit(
            i: usize,
            plan: &StackPlan,
            index: &HashMap<&str, usize>,
            marks: &mut [Mark],
            path: &mut Vec<String>,
        ) -> Option<Vec<String>> {
            marks[i] = Mark::OnPath;
            path.push(plan.nodes[i].name.to_string());
            for dep in &plan.nodes[i].deps {
                let j = index[dep.as_str()];
                match marks[j] {
                    Mark::OnPath => {
                        let start = path.iter().position(|n| n == dep).unwrap_or(0);
                        let mut cycle = path[start..].to_vec();
                        cycle.push(dep.clone());
                        return Some(cycle);
                    }
                    Mark::New => {
                        if let Some(cycle) = visit(j, plan, index, marks, path) {
                            return Some(cycle);
                        }
                    }
                    Mark::Done => {}
                }
            }
            path.pop();
            marks[i] = Mark::Done;
            None
        }
        let mut marks = vec![Mark::New; self.nodes.len()];
        (0..self.nodes.len()).find_map(|i| {
            if marks[i] == Mark::New {
                visit(i, self, index, &mut marks, &mut Vec::new())
            } else {
                None
            }
        })
    }

    /// The services, in registration order.
    pub fn services(&self) -> impl Iterator<Item = &str> {
        self.nodes.iter().map(|n| &*n.name)
    }

    /// How many services there are.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether there is no service.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Whether `name` is one of the services.
    pub fn contains(&self, name: &str) -> bool {
        self.node(name).is_some()
    }

    /// What `name` depends on (empty for an unknown name).
    pub fn dependencies(&self, name: &str) -> &[String] {
        self.node(name).map_or(&[], |n| &n.deps)
    }

    /// The services that depend on `name` directly, in registration order.
    pub fn dependents(&self, name: &str) -> Vec<&str> {
        self.nodes
            .iter()
            .filter(|n| n.deps.iter().any(|d| d == name))
            .map(|n| &*n.name)
            .collect()
    }

    /// Stage k holds the services whose longest chain of dependencies is
    /// k long: each starts with the others of its stage, once the stages
    /// before it are ready. Within a stage, registration order.
    pub fn start_stages(&self) -> Vec<Vec<&str>> {
        self.stages(|plan, name| plan.dependencies(name).iter().map(String::as_str).collect())
    }

    /// Stage k holds the services whose longest chain of dependents is k
    /// long: each stops with the others of its stage, once every service
    /// that depends on it has stopped. Within a stage, registration order.
    pub fn stop_stages(&self) -> Vec<Vec<&str>> {
        self.stages(StackPlan::dependents)
    }

    /// Groups the services by the length of their longest chain along
    /// `before` (the services that must come first).
    fn stages<'p>(
        &'p self,
        before: impl Fn(&'p StackPlan, &str) -> Vec<&'p str>,
    ) -> Vec<Vec<&'p str>> {
        let mut depth: HashMap<&str, usize> = HashMap::new();
        // The graph is acyclic: settle services in rounds until all have a
        // depth (at most one round per service).
        while depth.len() < self.nodes.len() {
            let before_len = depth.len();
            for node in &self.nodes {
                if depth.contains_key(&*node.name) {
                    continue;
                }
                let firsts = before(self, &node.name);
                // A dependency removed from a running stack no longer
                // orders anything.
                let firsts: Vec<&str> = firsts.into_iter().filter(|f| self.contains(f)).collect();
                if firsts.iter().all(|f| depth.contains_key(f)) {
                    let d = firsts.iter().map(|f| depth[f] + 1).max().unwrap_or(0);
                    depth.insert(&node.name, d);
                }
            }
            if depth.len() == before_len {
                break;
            }
        }
        let count = depth.values().max().map_or(0, |d| d + 1);
        let mut stages = vec![Vec::new(); count];
        for node in &self.nodes {
            if let Some(d) = depth.get(&*node.name) {
                stages[*d].push(&*node.name);
            }
        }
        stages
    }

    /// Of the `running` services (newest last), those that no running
    /// service and no stop `under_way` depends on, newest first: the ones a
    /// full stop may stop now.
    pub(crate) fn stoppable_now<'r>(
        &self,
        running: &[&'r str],
        under_way: &[&str],
    ) -> Vec<&'r str> {
        let needed: Vec<&str> = running
            .iter()
            .chain(under_way)
            .flat_map(|name| self.dependencies(name))
            .map(String::as_str)
            .collect();
        running
            .iter()
            .rev()
            .filter(|name| !needed.contains(name))
            .copied()
            .collect()
    }

    /// Adds `name`, depending on `deps`, which must be in the plan (so no
    /// cycle can form).
    pub(crate) fn add(&mut self, name: &str, deps: &[&str]) -> Result<(), GraphError> {
        if self.contains(name) {
            return Err(GraphError::Duplicate(name.to_owned()));
        }
        if let Some(missing) = deps.iter().find(|d| !self.contains(d)) {
            return Err(GraphError::UnknownDependency {
                service: name.to_owned(),
                missing: (*missing).to_owned(),
            });
        }
        let name: Arc<str> = Arc::from(name);
        self.index.insert(name.clone(), self.nodes.len());
        self.nodes.push(Node {
            name,
            deps: deps.iter().map(|d| (*d).to_owned()).collect(),
        });
        Ok(())
    }

    /// Removes `name` (a service stopped and removed from a running stack).
    pub(crate) fn remove(&mut self, name: &str) {
        self.nodes.retain(|n| &*n.name != name);
        self.reindex();
    }

    /// Rebuilds [`index`](Self::index) from `nodes`.
    fn reindex(&mut self) {
        self.index = self
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.name.clone(), i))
            .collect();
    }

    fn node(&self, name: &str) -> Option<&Node> {
        self.index.get(name).map(|&i| &self.nodes[i])
    }
}
