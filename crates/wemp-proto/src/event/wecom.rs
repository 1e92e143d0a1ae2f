//! WeCom (企业微信) application events.
//!
//! WeCom shares the Official Account's menu, location and subscription events (the same
//! types read both: `AgentID` is kept in every [`crate::message::Header`]); the ones here
//! are WeCom's own: a member opening the app, contact changes, the result of an
//! asynchronous batch job and a click on a task card.

use crate::field::{record, top_level};

record! {
    /// `BatchJob` of `batch_job_result`.
    pub struct BatchJob {
        /// The job id returned when the job was submitted.
        "JobId" => job_id: String,
        /// `sync_user`, `replace_user`, `invite_user` or `replace_party`.
        "JobType" => job_type: String,
        /// 0 on success.
        "ErrCode" => errcode: i64,
        /// The error text (`ok` on success).
        "ErrMsg" => errmsg: Option<String>,
    }
}

top_level! {
    /// A member opened the WeCom app's home page (`enter_agent`).
    ///
    /// Official reference: <https://developer.work.weixin.qq.com/document/path/90240>
    pub struct EnterAgent ["event", "enter_agent"] {
        /// Empty.
        "EventKey" => event_key: Option<String>,
    }

    /// A member, department or tag changed in the WeCom contacts (`change_contact`); which
    /// change is [`ChangeContact::change`], and only the fields of that change are present.
    ///
    /// Official reference: <https://developer.work.weixin.qq.com/document/path/90970>
    pub struct ChangeContact ["event", "change_contact"] {
        /// `create_user`, `update_user`, `delete_user`, `create_party`, `update_party`,
        /// `delete_party` or `update_tag`.
        "ChangeType" => change_type: String,
        /// The member's UserID (member changes).
        "UserID" => user_id: Option<String>,
        /// The member's new UserID, when it changed (`update_user`).
        "NewUserID" => new_user_id: Option<String>,
        /// The member's or department's name.
        "Name" => name: Option<String>,
        /// The member's departments, comma-separated.
        "Department" => department: Option<String>,
        /// The department id (department changes).
        "Id" => party_id: Option<String>,
        /// The parent department id.
        "ParentId" => parent_id: Option<String>,
        /// The tag id (`update_tag`).
        "TagId" => tag_id: Option<String>,
        /// UserIDs added to the tag, comma-separated.
        "AddUserItems" => add_user_items: Option<String>,
        /// UserIDs removed from the tag, comma-separated.
        "DelUserItems" => del_user_items: Option<String>,
        /// Departments added to the tag, comma-separated.
        "AddPartyItems" => add_party_items: Option<String>,
        /// Departments removed from the tag, comma-separated.
        "DelPartyItems" => del_party_items: Option<String>,
    }

    /// An asynchronous contacts job finished (`batch_job_result`).
    ///
    /// Official reference: <https://developer.work.weixin.qq.com/document/path/90973>
    pub struct BatchJobResult ["event", "batch_job_result"] {
        /// The job and its result.
        "BatchJob" => batch_job: BatchJob,
    }

    /// A member clicked a button of a task card (`taskcard_click`).
    ///
    /// Official reference: <https://developer.work.weixin.qq.com/document/path/90240>
    pub struct TaskcardClick ["event", "taskcard_click"] {
        /// The button's key.
        "EventKey" => event_key: String,
        /// The task card's id.
        "TaskId" => task_id: String,
    }
}

/// What a `change_contact` event changed: an open set.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ChangeType {
    /// `create_user`
    CreateUser,
    /// `update_user`
    UpdateUser,
    /// `delete_user`
    DeleteUser,
    /// `create_party`
    CreateParty,
    /// `update_party`
    UpdateParty,
    /// `delete_party`
    DeleteParty,
    /// `update_tag`
    UpdateTag,
    /// Any other value, as sent.
    Other(String),
}

impl ChangeContact {
    /// The change, typed.
    ///
    /// ```
    /// use wemp_proto::event::{ChangeContact, ChangeType};
    /// let mut e = ChangeContact::default();
    /// e.change_type = "update_tag".into();
    /// assert_eq!(e.change(), ChangeType::UpdateTag);
    /// ```
    pub fn change(&self) -> ChangeType {
        match self.change_type.trim() {
            "create_user" => ChangeType::CreateUser,
            "update_user" => ChangeType::UpdateUser,
            "delete_user" => ChangeType::DeleteUser,
            "create_party" => ChangeType::CreateParty,
            "update_party" => ChangeType::UpdateParty,
            "delete_party" => ChangeType::DeleteParty,
            "update_tag" => ChangeType::UpdateTag,
            other => ChangeType::Other(other.to_owned()),
        }
    }
}
