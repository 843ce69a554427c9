//! The typed layer seen from the daemon: [`Typed`] is the [`Kind`] of a
//! [`TypedKind`], and its instances the [`Component`]s of its
//! [`TypedComponent`]s. What is the same for every instance (the action
//! table, the schemas) is built once, when the kind is made.

use super::actions::Actions;
use super::schema::PropertiesSchema;
use super::{Ctx, TypedComponent, TypedKind};
use crate::component::{Admitted, Component, Context, Kind, TaskOutput};
use crate::protocol::{Action, ActionKind, ErrorInfo};
use crate::spec::ComponentSpec;
use crate::time::TimerToken;
use serde_json::{Map, Value};
use std::sync::Arc;
use std::time::Duration;

/// A [`TypedKind`] as a [`Kind`] (see [`TypedKind::into_kind`]).
pub struct Typed<K: TypedKind> {
    /// The kind.
    kind: K,
    /// Its components' actions, shared by every instance.
    actions: Arc<Actions<K::Component>>,
    /// The schemas published, generated from the parameter types.
    schemas: Map<String, Value>,
    /// Its properties' schema, compiled.
    properties: PropertiesSchema,
}

impl<K: TypedKind> std::fmt::Debug for Typed<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Typed")
            .field("category", &K::CATEGORY)
            .field("type", &K::TYPE_NAME)
            .field("actions", &self.actions)
            .finish()
    }
}

impl<K: TypedKind> Typed<K> {
    /// Registers the component's actions and generates the schemas.
    pub fn new(kind: K) -> Self {
        let mut actions = Actions::new();
        K::Component::actions(&mut actions);
        Typed {
            kind,
            schemas: actions.schemas(),
            actions: Arc::new(actions),
            properties: PropertiesSchema::of::<K::Properties>(),
        }
    }
}

impl<K: TypedKind> Kind for Typed<K> {
    fn category(&self) -> &'static str {
        K::CATEGORY
    }

    fn type_name(&self) -> &'static str {
        K::TYPE_NAME
    }

    fn schemas(&self) -> Map<String, Value> {
        self.schemas.clone()
    }

    fn build(&self, spec: &ComponentSpec) -> Result<Box<dyn Component>, ErrorInfo> {
        let properties = self.properties.parse(spec)?;
        let component = self.kind.build(spec, properties)?;
        Ok(Box::new(Instance {
            component,
            actions: self.actions.clone(),
        }))
    }

    fn drain(&self, grace: Duration) {
        self.kind.drain(grace);
    }
}

/// One instance of a typed kind.
struct Instance<C> {
    /// The kind's component.
    component: C,
    /// Its type's actions.
    actions: Arc<Actions<C>>,
}

impl<C: TypedComponent> Component for Instance<C> {
    fn actions(&self) -> &[ActionKind] {
        self.actions.kinds()
    }

    fn unsupported(&self, action: ActionKind) -> Option<String> {
        self.component.unsupported(action)
    }

    fn admit(&self, _spec: &ComponentSpec, action: &Action) -> Result<Admitted, ErrorInfo> {
        self.actions.admit(&self.component, action)
    }

    fn act(
        &mut self,
        ctx: &mut Context<'_>,
        action: &Action,
        admitted: Admitted,
    ) -> Result<(), ErrorInfo> {
        let mut ctx = Ctx::new(ctx.reborrow());
        self.actions
            .run(&mut self.component, &mut ctx, action, admitted)
    }

    fn on_start(&mut self, ctx: &mut Context<'_>) -> Result<(), ErrorInfo> {
        self.component.on_start(&mut Ctx::new(ctx.reborrow()))
    }

    fn reset(&mut self, ctx: &mut Context<'_>, _action: &Action) -> Result<(), ErrorInfo> {
        self.component.reset(&mut Ctx::new(ctx.reborrow()))
    }

    fn on_timer(&mut self, ctx: &mut Context<'_>, token: TimerToken) -> Result<(), ErrorInfo> {
        // Typed code only schedules `C::Timer`s through its `Ctx`.
        match token.downcast::<C::Timer>() {
            Ok(timer) => self
                .component
                .on_timer(&mut Ctx::new(ctx.reborrow()), *timer),
            Err(_) => Ok(()),
        }
    }

    fn on_task(&mut self, ctx: &mut Context<'_>, output: TaskOutput) -> Result<(), ErrorInfo> {
        // Typed code only spawns futures of `C::Output` through its `Ctx`.
        match output.downcast::<C::Output>() {
            Ok(output) => self
                .component
                .on_task(&mut Ctx::new(ctx.reborrow()), *output),
            Err(_) => Ok(()),
        }
    }

    fn status_fields(&self, fields: &mut Map<String, Value>) {
        self.component.status_fields(fields);
    }

    fn own_schemas(&self) -> Option<Map<String, Value>> {
        self.component.own_schemas()
    }

    fn on_remove(&mut self) {
        self.component.on_remove();
    }
}
