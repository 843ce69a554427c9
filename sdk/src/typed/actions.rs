//! The actions a typed component carries out, registered once per type:
//! what each one parses its parameters into (which gives its published
//! schema too), what checks it before the state changes, and the method
//! that carries it out. A component supports exactly what it registered,
//! so an action cannot be listed without being implemented.

use super::schema::schema_for;
use super::{Ctx, TypedComponent};
use crate::component::Admitted;
use crate::protocol::action::cut;
use crate::protocol::{Action, ActionKind, ErrorCode, ErrorInfo};
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{Map, Value};

/// The longest parse error echoed, in characters.
const ECHO_LIMIT: usize = 256;

/// What an action's `parameters` are parsed into. Implemented for every
/// type that is [`serde::Deserialize`] and [`JsonSchema`] (its schema is
/// published under the action's name and checked before the state
/// changes), and for [`NoParameters`] (no schema: anything is accepted and
/// ignored).
pub trait Parameters: Sized + Send + 'static {
    /// The published schema, if the action has one.
    fn schema() -> Option<Value>;

    /// Parses an action's parameters (after they passed the schema).
    fn parse(parameters: &Map<String, Value>) -> Result<Self, serde_json::Error>;
}

impl<T: DeserializeOwned + JsonSchema + Send + 'static> Parameters for T {
    fn schema() -> Option<Value> {
        Some(schema_for::<T>())
    }

    fn parse(parameters: &Map<String, Value>) -> Result<Self, serde_json::Error> {
        serde_json::from_value(Value::Object(parameters.clone()))
    }
}

/// An action that takes no parameters: none are published, whatever is sent
/// is ignored (as for an action without a schema).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub struct NoParameters;

impl Parameters for NoParameters {
    fn schema() -> Option<Value> {
        None
    }

    fn parse(_parameters: &Map<String, Value>) -> Result<Self, serde_json::Error> {
        Ok(NoParameters)
    }
}

/// A method that carries out an action: `fn(&mut self, &mut Ctx<Self>)`
/// for an action without parameters, or `fn(&mut self, &mut Ctx<Self>, P)`
/// with `P` its [`Parameters`]. `M` only tells the two apart.
pub trait Handler<C: TypedComponent, M>: Send + Sync + 'static {
    /// What it is given.
    type Input: Parameters;

    /// Carries the action out.
    fn call(
        &self,
        component: &mut C,
        ctx: &mut Ctx<'_, C>,
        input: Self::Input,
    ) -> Result<(), ErrorInfo>;
}

impl<C, F> Handler<C, ()> for F
where
    C: TypedComponent,
    F: Fn(&mut C, &mut Ctx<'_, C>) -> Result<(), ErrorInfo> + Send + Sync + 'static,
{
    type Input = NoParameters;

    fn call(
        &self,
        component: &mut C,
        ctx: &mut Ctx<'_, C>,
        _: NoParameters,
    ) -> Result<(), ErrorInfo> {
        self(component, ctx)
    }
}

impl<C, P, F> Handler<C, (P,)> for F
where
    C: TypedComponent,
    P: Parameters,
    F: Fn(&mut C, &mut Ctx<'_, C>, P) -> Result<(), ErrorInfo> + Send + Sync + 'static,
{
    type Input = P;

    fn call(&self, component: &mut C, ctx: &mut Ctx<'_, C>, input: P) -> Result<(), ErrorInfo> {
        self(component, ctx, input)
    }
}

/// Parses and checks an action before the state changes.
type AdmitFn<C> = Box<dyn Fn(&C, &Action) -> Result<Admitted, ErrorInfo> + Send + Sync>;
/// Carries an admitted action out.
type RunFn<C> =
    Box<dyn Fn(&mut C, &mut Ctx<'_, C>, Admitted) -> Result<(), ErrorInfo> + Send + Sync>;

/// One registered action.
struct Entry<C> {
    /// Which action.
    kind: ActionKind,
    /// Its published schema.
    schema: Option<Value>,
    /// Parse and check, before the state changes.
    admit: AdmitFn<C>,
    /// Carry out.
    run: RunFn<C>,
}

/// The actions of a typed component, filled in by
/// [`TypedComponent::actions`]: `actions.start(Self::start).stop(Self::stop)`.
/// Each action's method is given its parameters parsed; the `_checked`
/// variants first call a check that runs before the state changes (it may
/// refuse the action, keeping the state) and hand its result on instead.
pub struct Actions<C> {
    /// In registration order; a later registration of an action replaces
    /// an earlier one.
    entries: Vec<Entry<C>>,
    /// The registered actions (what [`crate::Component::actions`] lists).
    kinds: Vec<ActionKind>,
}

impl<C> std::fmt::Debug for Actions<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(&self.kinds).finish()
    }
}

macro_rules! action_methods {
    ($($kind:ident: $plain:ident, $checked:ident, $what:literal;)*) => {$(
        #[doc = concat!("Carries out `", $what, "` with `handler`, given the parsed parameters (if it takes any).")]
        pub fn $plain<M>(&mut self, handler: impl Handler<C, M>) -> &mut Self {
            self.register(ActionKind::$kind, handler)
        }

        #[doc = concat!("Carries out `", $what, "` with `handler`, given what `check` returned for the parsed parameters and the action; `check` runs before the state changes and an error from it refuses the action.")]
        pub fn $checked<P, A, Check, Run>(&mut self, check: Check, handler: Run) -> &mut Self
        where
            P: Parameters,
            A: Send + 'static,
            Check: Fn(&C, P, &Action) -> Result<A, ErrorInfo> + Send + Sync + 'static,
            Run: Fn(&mut C, &mut Ctx<'_, C>, A) -> Result<(), ErrorInfo> + Send + Sync + 'static,
        {
            self.register_checked(ActionKind::$kind, check, handler)
        }
    )*};
}

impl<C: TypedComponent> Actions<C> {
    /// No actions yet.
    pub(crate) fn new() -> Self {
        Actions {
            entries: Vec::new(),
            kinds: Vec::new(),
        }
    }

    action_methods! {
        Start: start, start_checked, "start";
        Stop: stop, stop_checked, "stop";
        Pause: pause, pause_checked, "pause";
        Resume: resume, resume_checked, "resume";
        Shutdown: shutdown, shutdown_checked, "shutdown";
        Create: create, create_checked, "create";
        Delete: delete, delete_checked, "delete";
    }

    fn register<M, H: Handler<C, M>>(&mut self, kind: ActionKind, handler: H) -> &mut Self {
        self.insert(Entry {
            kind,
            schema: H::Input::schema(),
            admit: Box::new(|_, action| parse::<H::Input>(action).map(Admitted::new)),
            run: Box::new(move |component, ctx, admitted| match admitted.take() {
                Some(input) => handler.call(component, ctx, input),
                None => Err(not_admitted(kind)),
            }),
        })
    }

    fn register_checked<P, A, Check, Run>(
        &mut self,
        kind: ActionKind,
        check: Check,
        handler: Run,
    ) -> &mut Self
    where
        P: Parameters,
        A: Send + 'static,
        Check: Fn(&C, P, &Action) -> Result<A, ErrorInfo> + Send + Sync + 'static,
        Run: Fn(&mut C, &mut Ctx<'_, C>, A) -> Result<(), ErrorInfo> + Send + Sync + 'static,
    {
        self.insert(Entry {
            kind,
            schema: P::schema(),
            admit: Box::new(move |component, action| {
                check(component, parse(action)?, action).map(Admitted::new)
            }),
            run: Box::new(move |component, ctx, admitted| match admitted.take() {
                Some(input) => handler(component, ctx, input),
                None => Err(not_admitted(kind)),
            }),
        })
    }

    fn insert(&mut self, entry: Entry<C>) -> &mut Self {
        self.entries.retain(|e| e.kind != entry.kind);
        self.kinds.retain(|k| *k != entry.kind);
        self.kinds.push(entry.kind);
        self.entries.push(entry);
        self
    }

    /// The registered actions.
    pub(crate) fn kinds(&self) -> &[ActionKind] {
        &self.kinds
    }

    /// The published schemas, by action name.
    pub(crate) fn schemas(&self) -> Map<String, Value> {
        self.entries
            .iter()
            .filter_map(|e| Some((e.kind.as_str().to_owned(), e.schema.clone()?)))
            .collect()
    }

    /// Parses and checks `action` for `component`.
    pub(crate) fn admit(&self, component: &C, action: &Action) -> Result<Admitted, ErrorInfo> {
        (self.entry(action.kind)?.admit)(component, action)
    }

    /// Carries out an admitted `action` (admitting it first if it was not).
    pub(crate) fn run(
        &self,
        component: &mut C,
        ctx: &mut Ctx<'_, C>,
        action: &Action,
        admitted: Admitted,
    ) -> Result<(), ErrorInfo> {
        let entry = self.entry(action.kind)?;
        let admitted = if admitted.is_none() {
            (entry.admit)(component, action)?
        } else {
            admitted
        };
        (entry.run)(component, ctx, admitted)
    }

    fn entry(&self, kind: ActionKind) -> Result<&Entry<C>, ErrorInfo> {
        self.entries.iter().find(|e| e.kind == kind).ok_or_else(|| {
            ErrorInfo::new(
                ErrorCode::Unsupported,
                format!("this component does not support {kind}"),
            )
            .with("action", kind.as_str())
        })
    }
}

/// Parses an action's parameters into `P`; a failure refuses the action.
fn parse<P: Parameters>(action: &Action) -> Result<P, ErrorInfo> {
    P::parse(&action.parameters).map_err(|error| {
        ErrorInfo::new(
            ErrorCode::InvalidParameters,
            format!(
                "invalid {} parameters: {}",
                action.kind,
                cut(&error.to_string(), ECHO_LIMIT)
            ),
        )
        .with("action", action.kind.as_str())
    })
}

/// What [`Admitted`] held was not what the action's check produced (a
/// runtime that calls `act` with another component's admission).
fn not_admitted(kind: ActionKind) -> ErrorInfo {
    ErrorInfo::new(
        ErrorCode::Failed,
        format!("{kind} was not admitted by this component"),
    )
    .with("action", kind.as_str())
}
