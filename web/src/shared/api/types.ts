// Names for the API's types. Every shape comes from the generated schema (made from the
// OpenAPI document the Rust types publish); nothing here is written by hand.
import type { components } from "./schema.gen";

type Schemas = components["schemas"];

export type User = Schemas["User"];
export type TokenResponse = Schemas["TokenResponse"];
export type RegisterRequest = Schemas["RegisterRequest"];
export type LoginRequest = Schemas["LoginRequest"];
export type LogoutRequest = Schemas["LogoutRequest"];
export type AdminUser = Schemas["AdminUser"];
export type UserUsage = Schemas["UserUsage"];
export type CreateUserRequest = Schemas["CreateUserRequest"];
export type UpdateUserRequest = Schemas["UpdateUserRequest"];
export type Invite = Schemas["Invite"];
export type CreateInviteRequest = Schemas["CreateInviteRequest"];
export type CreatedInvite = Schemas["CreatedInvite"];
export type AccountSettings = Schemas["AccountSettings"];
export type Registration = Schemas["Registration"];
export type AuditEvent = Schemas["AuditEvent"];
export type SetupStatus = Schemas["SetupStatus"];
export type Chat = Schemas["Chat"];
export type ChatCosts = Schemas["ChatCosts"];
export type ChatStatus = Schemas["ChatStatus"];
export type CreateChatRequest = Schemas["CreateChatRequest"];
export type UpdateChatRequest = Schemas["UpdateChatRequest"];
export type PermissionMode = Schemas["PermissionMode"];
export type Message = Schemas["Message"];
export type MessageStatus = Schemas["MessageStatus"];
export type PostMessageRequest = Schemas["PostMessageRequest"];
export type PostMessageResponse = Schemas["PostMessageResponse"];
export type ChatEvent = Schemas["ChatEvent"];
export type EventPayload = Schemas["EventPayload"];
export type EventType = EventPayload["type"];
export type Usage = Schemas["Usage"];
export type Health = Schemas["Health"];
export type ErrorBody = Schemas["ErrorBody"];
export type FileEntry = Schemas["FileEntry"];
export type MoveRequest = Schemas["MoveRequest"];
export type SandboxInfo = Schemas["SandboxInfo"];
export type PermissionKind = Schemas["PermissionKind"];
export type ResolvedBy = Schemas["ResolvedBy"];
export type PermissionAnswerRequest = Schemas["PermissionAnswerRequest"];
export type PermissionAnswerResponse = Schemas["PermissionAnswerResponse"];
export type PendingPermission = Schemas["PendingPermission"];
export type QueuedMessage = Schemas["QueuedMessage"];
export type QueueMessageRequest = Schemas["QueueMessageRequest"];
export type UpdateQueuedMessageRequest = Schemas["UpdateQueuedMessageRequest"];
export type SendQueuedResponse = Schemas["SendQueuedResponse"];
export type CheckpointInfo = Schemas["CheckpointInfo"];
export type TransientEvent = Schemas["TransientEvent"];
export type UserSettings = Schemas["UserSettings"];
export type UpdateUserSettingsRequest = Schemas["UpdateUserSettingsRequest"];
export type StoredPermissionRule = Schemas["StoredPermissionRule"];
export type RestoreResponse = Schemas["RestoreResponse"];
export type ForkRequest = Schemas["ForkRequest"];

/** The chat event of one `type`, e.g. `EventOf<"tool_started">`. */
export type EventOf<T extends EventType> = Extract<ChatEvent, { type: T }>;
export type Task = Schemas["Task"];
export type TaskRun = Schemas["TaskRun"];
export type Schedule = Schemas["Schedule"];
export type TaskTarget = Schemas["TaskTarget"];
export type MissedRunPolicy = Schemas["MissedRunPolicy"];
export type CreateTaskRequest = Schemas["CreateTaskRequest"];
export type UpdateTaskRequest = Schemas["UpdateTaskRequest"];
export type TaskPreview = Schemas["TaskPreview"];
