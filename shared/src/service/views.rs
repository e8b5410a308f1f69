//! The org views this container decided creates on (profile and host entry, with their
//! revisions). A create reads none of them: its claim's write requires the cached view
//! unchanged, and a changed view comes back with the refusal, so a stale entry costs one
//! refused write, never a wrong decision.

use crate::ids::{OrgId, UserId};
use crate::store::OrgView;
use std::collections::HashMap;
use std::sync::Mutex;

/// Views kept at most; past it the cache starts over (a miss costs one read).
const MAX_VIEWS: usize = 4096;

#[derive(Default)]
pub struct OrgViews {
    views: Mutex<HashMap<(OrgId, UserId), OrgView>>,
}

impl OrgViews {
    pub fn get(&self, org: &OrgId, host: &UserId) -> Option<OrgView> {
        self.lock().get(&(org.clone(), host.clone())).cloned()
    }

    pub fn keep(&self, org: &OrgId, view: &OrgView) {
        let mut views = self.lock();
        if views.len() >= MAX_VIEWS {
            views.clear();
        }
        views.insert((org.clone(), view.host_user.clone()), view.clone());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(OrgId, UserId), OrgView>> {
        self.views.lock().unwrap_or_else(|e| e.into_inner())
    }
}
