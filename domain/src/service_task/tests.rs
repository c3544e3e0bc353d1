//! Service task rules, one test per rule: given the task's history, when fleet staff assign,
//! start or complete it, then these events or this rejection. (Opening and completing also
//! touch the car: see `crate::fleet`'s tests.)

use super::*;
use crate::rejection::FieldError;
use crate::testing::*;
use insta::assert_yaml_snapshot;

fn staff(id: &str) -> StaffId {
    StaffId::parse("staff_id", id).unwrap()
}

fn opened() -> ServiceTaskEvent {
    ServiceTaskEvent::ServiceTaskOpened {
        opening: ServiceTaskOpening {
            task_id: WASH_TASK,
            vehicle_id: KIA,
            kind: ServiceTaskKind::Wash,
            note: Some("Mud on the doors".to_owned()),
            after_trip_id: None,
        },
        opened_at: at("2026-11-25T09:00:00Z"),
    }
}

fn assigned(to: &str) -> ServiceTaskEvent {
    ServiceTaskEvent::ServiceTaskAssigned {
        task_id: WASH_TASK,
        staff_id: staff(to),
        assigned_at: at("2026-11-25T09:10:00Z"),
    }
}

fn started(by: &str) -> ServiceTaskEvent {
    ServiceTaskEvent::ServiceTaskStarted {
        task_id: WASH_TASK,
        staff_id: staff(by),
        started_at: at("2026-11-25T09:30:00Z"),
    }
}

fn completed(by: &str) -> ServiceTaskEvent {
    ServiceTaskEvent::ServiceTaskCompleted {
        task_id: WASH_TASK,
        vehicle_id: KIA,
        staff_id: staff(by),
        note: None,
        completed_at: at("2026-11-25T09:50:00Z"),
    }
}

fn now() -> ServiceTaskContext {
    ServiceTaskContext {
        task_id: WASH_TASK,
        now: at(NOW),
    }
}

fn assign(to: &str) -> ServiceTaskCommand {
    ServiceTaskCommand::Assign {
        staff_id: staff(to),
    }
}

fn start(by: &str) -> ServiceTaskCommand {
    ServiceTaskCommand::Start {
        staff_id: staff(by),
    }
}

fn complete(by: &str, note: Option<&str>) -> ServiceTaskCommand {
    ServiceTaskCommand::Complete {
        staff_id: staff(by),
        note: note.map(str::to_owned),
    }
}

#[test]
fn staff_ids_have_no_spaces() {
    assert_eq!(staff(" fleet-7 ").as_str(), "fleet-7");
    assert!(StaffId::parse("staff_id", "").is_err());
    assert!(StaffId::parse("staff_id", "two words").is_err());
    assert!(StaffId::parse("staff_id", &"a".repeat(101)).is_err());
}

#[test]
fn open_records_the_task_with_its_trimmed_note() {
    let scenario = ServiceTask::given([])
        .when(
            ServiceTaskCommand::Open {
                vehicle_id: KIA,
                kind: ServiceTaskKind::Repair,
                note: Some("  Left mirror cracked ".to_owned()),
                after_trip_id: None,
            },
            now(),
        )
        .then();
    assert!(matches!(
        scenario.events(),
        [ServiceTaskEvent::ServiceTaskOpened { opening, .. }]
            if opening.note.as_deref() == Some("Left mirror cracked")
    ));
    assert_yaml_snapshot!(scenario);
}

#[test]
fn open_with_a_note_over_a_thousand_characters_is_rejected() {
    let scenario = ServiceTask::given([])
        .when(
            ServiceTaskCommand::Open {
                vehicle_id: KIA,
                kind: ServiceTaskKind::Wash,
                note: Some("x".repeat(1001)),
                after_trip_id: None,
            },
            now(),
        )
        .then();
    assert!(matches!(
        scenario.rejection(),
        Rejection::InvalidField(FieldError { field, .. }) if field == "note"
    ));
    assert_yaml_snapshot!(scenario, {".when.note" => "[1001 characters]"});
}

#[test]
fn open_a_task_id_used_before_is_rejected() {
    let scenario = ServiceTask::given([opened()])
        .when(
            ServiceTaskCommand::Open {
                vehicle_id: KIA,
                kind: ServiceTaskKind::Wash,
                note: None,
                after_trip_id: None,
            },
            now(),
        )
        .then();
    assert_eq!(
        scenario.rejection(),
        &Rejection::ServiceTaskAlreadyOpened { task_id: WASH_TASK }
    );
    assert_yaml_snapshot!(scenario);
}

#[test]
fn assign_gives_an_open_task_to_a_staff_member() {
    let scenario = ServiceTask::given([opened()])
        .when(assign("fleet-7"), now())
        .then();
    assert!(matches!(
        scenario.events(),
        [ServiceTaskEvent::ServiceTaskAssigned { staff_id, .. }] if staff_id.as_str() == "fleet-7"
    ));
    assert_yaml_snapshot!(scenario);
}

#[test]
fn assign_to_someone_else_before_the_work_starts_hands_it_over() {
    let scenario = ServiceTask::given([opened(), assigned("fleet-7")])
        .when(assign("fleet-9"), now())
        .then();
    assert!(matches!(
        scenario.events(),
        [ServiceTaskEvent::ServiceTaskAssigned { staff_id, .. }] if staff_id.as_str() == "fleet-9"
    ));
    assert_yaml_snapshot!(scenario);
}

#[test]
fn assign_to_the_same_staff_member_again_is_rejected() {
    let scenario = ServiceTask::given([opened(), assigned("fleet-7")])
        .when(assign("fleet-7"), now())
        .then();
    assert!(matches!(
        scenario.rejection(),
        Rejection::ServiceTaskAlreadyAssigned { staff_id, .. } if staff_id == "fleet-7"
    ));
    assert_yaml_snapshot!(scenario);
}

#[test]
fn assign_a_task_in_progress_is_rejected() {
    let scenario = ServiceTask::given([opened(), assigned("fleet-7"), started("fleet-7")])
        .when(assign("fleet-9"), now())
        .then();
    assert_eq!(
        scenario.rejection(),
        &Rejection::ServiceTaskAlreadyStarted { task_id: WASH_TASK }
    );
    assert_yaml_snapshot!(scenario);
}

#[test]
fn assign_a_task_that_was_never_opened_is_rejected() {
    let scenario = ServiceTask::given([]).when(assign("fleet-7"), now()).then();
    assert_eq!(
        scenario.rejection(),
        &Rejection::ServiceTaskNotFound { task_id: WASH_TASK }
    );
    assert_yaml_snapshot!(scenario);
}

#[test]
fn start_by_the_assignee_puts_the_task_in_progress() {
    let scenario = ServiceTask::given([opened(), assigned("fleet-7")])
        .when(start("fleet-7"), now())
        .then();
    assert!(matches!(
        scenario.events(),
        [ServiceTaskEvent::ServiceTaskStarted { .. }]
    ));
    assert_yaml_snapshot!(scenario);
}

#[test]
fn start_an_unassigned_task_is_rejected() {
    let scenario = ServiceTask::given([opened()])
        .when(start("fleet-7"), now())
        .then();
    assert_eq!(
        scenario.rejection(),
        &Rejection::ServiceTaskNotAssigned { task_id: WASH_TASK }
    );
    assert_yaml_snapshot!(scenario);
}

#[test]
fn start_by_someone_other_than_the_assignee_is_rejected() {
    let scenario = ServiceTask::given([opened(), assigned("fleet-7")])
        .when(start("fleet-9"), now())
        .then();
    assert!(matches!(
        scenario.rejection(),
        Rejection::ServiceTaskAssignedToAnother { staff_id, .. } if staff_id == "fleet-7"
    ));
    assert_yaml_snapshot!(scenario);
}

#[test]
fn start_twice_is_rejected() {
    let scenario = ServiceTask::given([opened(), assigned("fleet-7"), started("fleet-7")])
        .when(start("fleet-7"), now())
        .then();
    assert_eq!(
        scenario.rejection(),
        &Rejection::ServiceTaskAlreadyStarted { task_id: WASH_TASK }
    );
    assert_yaml_snapshot!(scenario);
}

#[test]
fn complete_by_the_worker_finishes_the_task() {
    let scenario = ServiceTask::given([opened(), assigned("fleet-7"), started("fleet-7")])
        .when(
            complete("fleet-7", Some(" Washed, interior vacuumed ")),
            now(),
        )
        .then();
    assert!(matches!(
        scenario.events(),
        [ServiceTaskEvent::ServiceTaskCompleted { note: Some(note), vehicle_id: KIA, .. }]
            if note == "Washed, interior vacuumed"
    ));
    assert_yaml_snapshot!(scenario);
}

#[test]
fn complete_a_task_that_has_not_started_is_rejected() {
    let scenario = ServiceTask::given([opened(), assigned("fleet-7")])
        .when(complete("fleet-7", None), now())
        .then();
    assert_eq!(
        scenario.rejection(),
        &Rejection::ServiceTaskNotStarted { task_id: WASH_TASK }
    );
    assert_yaml_snapshot!(scenario);
}

#[test]
fn complete_by_someone_other_than_the_worker_is_rejected() {
    let scenario = ServiceTask::given([opened(), assigned("fleet-7"), started("fleet-7")])
        .when(complete("fleet-9", None), now())
        .then();
    assert!(matches!(
        scenario.rejection(),
        Rejection::ServiceTaskAssignedToAnother { staff_id, .. } if staff_id == "fleet-7"
    ));
    assert_yaml_snapshot!(scenario);
}

#[test]
fn commands_after_completion_are_rejected() {
    let history = [
        opened(),
        assigned("fleet-7"),
        started("fleet-7"),
        completed("fleet-7"),
    ];
    for command in [
        assign("fleet-9"),
        start("fleet-7"),
        complete("fleet-7", None),
    ] {
        let scenario = ServiceTask::given(history.clone())
            .when(command, now())
            .then();
        assert_eq!(
            scenario.rejection(),
            &Rejection::ServiceTaskAlreadyCompleted { task_id: WASH_TASK }
        );
    }
    let scenario = ServiceTask::given(history)
        .when(complete("fleet-7", None), now())
        .then();
    assert_yaml_snapshot!(scenario);
}
