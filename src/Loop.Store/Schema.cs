namespace Loop.Store;

/// <summary>One schema step. Versions only grow; a shipped migration is never edited, a new one is added.</summary>
internal sealed record Migration(int Version, string Name, string Sql);

/// <summary>The schema, written once for both databases: times are BIGINT unix milliseconds
/// (PostgreSQL's INTEGER is 32-bit, SQLite gives BIGINT integer affinity), ids are TEXT, and only
/// the message id's autoincrement is spelled the SQLite way. <see cref="Postgres"/> respells it.</summary>
internal static class Schema
{
    public const string VersionTable = """
        CREATE TABLE IF NOT EXISTS schema_version (
            version INTEGER NOT NULL PRIMARY KEY,
            name TEXT NOT NULL,
            applied_at BIGINT NOT NULL
        );
        """;

    public static readonly IReadOnlyList<Migration> Sqlite =
    [
        new(1, "initial", """
            CREATE TABLE meta (
                key TEXT NOT NULL PRIMARY KEY,
                value TEXT NOT NULL
            );

            CREATE TABLE channels (
                id TEXT NOT NULL PRIMARY KEY,
                name TEXT NOT NULL,
                dir_path TEXT NULL UNIQUE,
                session_id TEXT NULL,
                created_at BIGINT NOT NULL,
                updated_at BIGINT NOT NULL
            );

            CREATE TABLE runs (
                id TEXT NOT NULL PRIMARY KEY,
                channel_id TEXT NOT NULL REFERENCES channels (id),
                task_id TEXT NULL,
                status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'timed_out', 'cancelled')),
                prompt TEXT NOT NULL,
                created_at BIGINT NOT NULL,
                started_at BIGINT NULL,
                finished_at BIGINT NULL,
                exit_code INTEGER NULL,
                reply TEXT NULL,
                error TEXT NULL,
                session_id TEXT NULL,
                model TEXT NULL,
                container_id TEXT NULL,
                input_tokens BIGINT NOT NULL DEFAULT 0,
                output_tokens BIGINT NOT NULL DEFAULT 0,
                cache_creation_input_tokens BIGINT NOT NULL DEFAULT 0,
                cache_read_input_tokens BIGINT NOT NULL DEFAULT 0,
                -- Invariant decimal text, so the cost reads back exactly (a REAL would round it).
                cost_usd TEXT NOT NULL DEFAULT '0',
                num_turns INTEGER NOT NULL DEFAULT 0,
                duration_ms BIGINT NOT NULL DEFAULT 0
            );

            -- Ids are time-ordered, so (channel_id, id) serves "newest first" with keyset paging.
            CREATE INDEX ix_runs_channel ON runs (channel_id, id);
            -- Only the few unfinished runs are indexed: crash recovery finds them without a scan.
            CREATE INDEX ix_runs_active ON runs (status) WHERE status IN ('queued', 'running');

            CREATE TABLE messages (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                channel_id TEXT NOT NULL REFERENCES channels (id),
                role TEXT NOT NULL CHECK (role IN ('user', 'agent', 'system')),
                author TEXT NOT NULL,
                content TEXT NOT NULL,
                created_at BIGINT NOT NULL,
                run_id TEXT NULL REFERENCES runs (id)
            );

            CREATE INDEX ix_messages_channel ON messages (channel_id, id);
            -- Pending user messages are few at any moment; this index holds only them.
            CREATE INDEX ix_messages_pending ON messages (channel_id, id) WHERE run_id IS NULL AND role = 'user';
            CREATE INDEX ix_messages_run ON messages (run_id) WHERE run_id IS NOT NULL;
            """),
        new(2, "tasks", """
            CREATE TABLE tasks (
                id TEXT NOT NULL PRIMARY KEY,
                channel_id TEXT NOT NULL REFERENCES channels (id),
                name TEXT NOT NULL,
                type TEXT NOT NULL CHECK (type IN ('cron', 'interval', 'once', 'loop')),
                schedule TEXT NOT NULL,
                timezone TEXT NULL,
                prompt TEXT NOT NULL,
                enabled INTEGER NOT NULL,
                context TEXT NOT NULL CHECK (context IN ('isolated', 'channel')),
                misfire TEXT NOT NULL CHECK (misfire IN ('run_once', 'skip')),
                next_run_at BIGINT NULL,
                last_run_at BIGINT NULL,
                session_id TEXT NULL,
                template TEXT NULL,
                max_iterations INTEGER NOT NULL,
                completion_promise TEXT NOT NULL,
                iteration INTEGER NOT NULL DEFAULT 0,
                loop_state TEXT NOT NULL CHECK (loop_state IN ('idle', 'running', 'completed', 'stopped', 'failed')),
                stop_reason TEXT NULL,
                last_output TEXT NULL,
                created_at BIGINT NOT NULL,
                updated_at BIGINT NOT NULL
            );

            CREATE INDEX ix_tasks_channel ON tasks (channel_id, id);
            -- Adding a template to a channel twice finds the first one.
            CREATE UNIQUE INDEX ux_tasks_template ON tasks (channel_id, template) WHERE template IS NOT NULL;
            CREATE INDEX ix_runs_task ON runs (task_id, id) WHERE task_id IS NOT NULL;
            CREATE INDEX ix_runs_queued_task ON runs (channel_id, id) WHERE status = 'queued' AND task_id IS NOT NULL;
            """),
        new(3, "chat bindings", """
            ALTER TABLE channels ADD COLUMN platform TEXT NULL;
            ALTER TABLE channels ADD COLUMN external_id TEXT NULL;
            CREATE UNIQUE INDEX ux_channels_external ON channels (platform, external_id) WHERE external_id IS NOT NULL;
            ALTER TABLE messages ADD COLUMN external_id TEXT NULL;
            """),
        new(4, "accounts", """
            CREATE TABLE users (
                id TEXT NOT NULL PRIMARY KEY,
                username TEXT NOT NULL UNIQUE,
                password_hash TEXT NOT NULL,
                created_at BIGINT NOT NULL
            );

            -- Only hashes of session and API tokens are kept: a copy of the database logs no one in.
            CREATE TABLE sessions (
                token_hash TEXT NOT NULL PRIMARY KEY,
                user_id TEXT NOT NULL REFERENCES users (id),
                created_at BIGINT NOT NULL,
                expires_at BIGINT NOT NULL
            );

            CREATE TABLE api_tokens (
                id TEXT NOT NULL PRIMARY KEY,
                name TEXT NOT NULL,
                token_hash TEXT NOT NULL UNIQUE,
                user_id TEXT NULL REFERENCES users (id),
                is_local INTEGER NOT NULL,
                created_at BIGINT NOT NULL,
                last_used_at BIGINT NULL
            );
            """),
        new(5, "runs by finish time", """
            -- The runtime view reads the runs of the last hour on every refresh: a range, not a scan.
            CREATE INDEX ix_runs_finished ON runs (finished_at);
            """),
        new(6, "channel tokens for scripts", """
            -- A token scoped to one channel (GET /api/channels/{id}/token), revocable like any API token.
            ALTER TABLE api_tokens ADD COLUMN channel_id TEXT NULL;
            CREATE INDEX ix_api_tokens_channel ON api_tokens (channel_id) WHERE channel_id IS NOT NULL;
            """),
        new(7, "orleans reminders", """
            -- Orleans' reminders on one node (SqliteReminderTable): what keeps each task's grain armed
            -- across restarts. grain_hash is the grain id's uniform hash, by which Orleans asks for ranges.
            CREATE TABLE orleans_reminders (
                grain_id TEXT NOT NULL,
                name TEXT NOT NULL,
                grain_hash BIGINT NOT NULL,
                start_at BIGINT NOT NULL,
                period_ms BIGINT NOT NULL,
                etag TEXT NOT NULL,
                PRIMARY KEY (grain_id, name)
            );
            CREATE INDEX ix_orleans_reminders_hash ON orleans_reminders (grain_hash);
            """),
        new(8, "task revisions", """
            -- Counts the writes of a task: an edit or a claim based on an older read is refused.
            ALTER TABLE tasks ADD COLUMN revision BIGINT NOT NULL DEFAULT 0;
            """),
        new(9, "run nodes", """
            -- The node that took the run (created it for its messages, or started it): when that node
            -- dies, the runs it had are the ones to report and run again.
            ALTER TABLE runs ADD COLUMN node TEXT NULL;
            """),
        new(10, "cluster membership", """
            -- Orleans' membership table (StoreMembershipTable): which nodes are in the cluster and
            -- alive. Every insert and update checks and moves the cluster's version, as Orleans'
            -- membership protocol asks; etags are counters.
            CREATE TABLE cluster_versions (
                cluster_id TEXT NOT NULL PRIMARY KEY,
                version BIGINT NOT NULL,
                etag BIGINT NOT NULL
            );

            CREATE TABLE cluster_members (
                cluster_id TEXT NOT NULL REFERENCES cluster_versions (cluster_id),
                silo TEXT NOT NULL,
                silo_name TEXT NOT NULL,
                host_name TEXT NOT NULL,
                status INTEGER NOT NULL,
                proxy_port INTEGER NOT NULL,
                suspect_times TEXT NOT NULL,
                start_time BIGINT NOT NULL,
                i_am_alive_time BIGINT NOT NULL,
                etag BIGINT NOT NULL,
                PRIMARY KEY (cluster_id, silo)
            );
            """),
        new(11, "chat message ids", """
            -- A chat platform can deliver a message twice (a gateway session resumed, or two nodes
            -- listening for a moment while its connection moves): its id stores it once per channel.
            CREATE INDEX ix_messages_external ON messages (channel_id, external_id) WHERE external_id IS NOT NULL;
            """),
        new(12, "connectors", """
            -- Chat platform accounts (ConnectorService). Channels bound to one carry its id as their
            -- platform; the Discord bot of config.json keeps the id "discord" its channels had.
            CREATE TABLE connectors (
                id TEXT NOT NULL PRIMARY KEY,
                kind TEXT NOT NULL,
                name TEXT NOT NULL,
                enabled INTEGER NOT NULL,
                -- JSON: the settings that are not secret, and who may talk through it.
                settings TEXT NOT NULL,
                allowed TEXT NOT NULL,
                secret_names TEXT NOT NULL,
                -- The credentials sealed with the node's secret key (AES-GCM); NULL for a connector
                -- of config.json, whose credentials stay in the file.
                secrets TEXT NULL,
                source TEXT NOT NULL CHECK (source IN ('api', 'config')),
                created_at BIGINT NOT NULL,
                updated_at BIGINT NOT NULL,
                status TEXT NOT NULL,
                status_error TEXT NULL,
                status_at BIGINT NULL,
                status_node TEXT NULL
            );
            """),
        new(13, "chat deliveries", """
            -- When a run's reply reached its chat platform. A node that dies after a run ended and
            -- before its reply was posted leaves it NULL: the node that takes over posts it.
            ALTER TABLE runs ADD COLUMN reply_posted_at BIGINT NULL;
            UPDATE runs SET reply_posted_at = finished_at WHERE status NOT IN ('queued', 'running');
            CREATE INDEX ix_runs_unposted ON runs (finished_at) WHERE reply_posted_at IS NULL;

            -- When a sender a connector does not allow was last told so (once a day, whichever node
            -- took the message, and across restarts).
            CREATE TABLE chat_refusals (
                connector_id TEXT NOT NULL,
                sender TEXT NOT NULL,
                refused_at BIGINT NOT NULL,
                PRIMARY KEY (connector_id, sender)
            );
            """),
        new(14, "channel modes", """
            -- Where a channel's agent runs: Claude Code in a container, or the Messages API called from
            -- the daemon (direct); and the model it asks for (NULL: claude_model, else the default).
            ALTER TABLE channels ADD COLUMN mode TEXT NOT NULL DEFAULT 'container' CHECK (mode IN ('container', 'direct'));
            ALTER TABLE channels ADD COLUMN model TEXT NULL;
            """),
        new(15, "prompt files", """
            -- A task whose prompt is a file of its project, read afresh at each run.
            ALTER TABLE tasks ADD COLUMN prompt_file TEXT NULL;
            """),
        new(16, "budgets", """
            -- USD a channel, task or connector may spend per UTC day and month (decimal text, NULL: no
            -- limit). What was spent is summed from the runs each time: the runs are the ledger.
            CREATE TABLE budgets (
                scope TEXT NOT NULL CHECK (scope IN ('channel', 'task', 'connector')),
                scope_id TEXT NOT NULL,
                daily_usd TEXT NULL,
                monthly_usd TEXT NULL,
                updated_at BIGINT NOT NULL,
                PRIMARY KEY (scope, scope_id)
            );
            -- The 80% warnings and "spent" notices given, one row each per budget and period
            -- ("daily:80:2026-12-04"): inserting it is how one node of a cluster claims to give it.
            CREATE TABLE budget_notices (
                scope TEXT NOT NULL,
                scope_id TEXT NOT NULL,
                notice TEXT NOT NULL,
                given_at BIGINT NOT NULL,
                PRIMARY KEY (scope, scope_id, notice)
            );
            """),
        new(17, "channel progress", """
            -- What a channel's chat shows while a run works: nothing, its tool calls, or also the
            -- agent's remarks between them.
            ALTER TABLE channels ADD COLUMN progress TEXT NOT NULL DEFAULT 'tools' CHECK (progress IN ('off', 'tools', 'verbose'));
            """),
        new(18, "forked channels", """
            -- A channel forked from another (a Discord thread): its parent, and the parent's session and
            -- project directory when it was forked. Its first run resumes that session with --fork-session.
            ALTER TABLE channels ADD COLUMN parent_id TEXT NULL;
            ALTER TABLE channels ADD COLUMN fork_session_id TEXT NULL;
            ALTER TABLE channels ADD COLUMN fork_dir_path TEXT NULL;
            """),
        new(19, "chat roles", """
            -- Who may do what through a connector (JSON arrays of platform identities). Kept apart from
            -- the connector so a connector of config.json gets roles too; no row: roles not configured.
            CREATE TABLE chat_roles (
                connector_id TEXT NOT NULL PRIMARY KEY,
                owners TEXT NOT NULL,
                members TEXT NOT NULL,
                updated_at BIGINT NOT NULL
            );
            """),
        new(20, "user roles", """
            -- What a dashboard account may do: an admin everything, a viewer only look. The account made
            -- at setup, and any made before roles existed, is an admin.
            ALTER TABLE users ADD COLUMN role TEXT NOT NULL DEFAULT 'admin' CHECK (role IN ('admin', 'viewer'));
            """),
        new(21, "fork worktrees", """
            -- A fork that works in a git worktree of its own (asked for when it was forked), and that
            -- worktree once its first run made it: the repository, the worktree, its branch, and where in it
            -- the fork works.
            ALTER TABLE channels ADD COLUMN fork_worktree INTEGER NOT NULL DEFAULT 0;
            ALTER TABLE channels ADD COLUMN worktree_repo TEXT NULL;
            ALTER TABLE channels ADD COLUMN worktree_path TEXT NULL;
            ALTER TABLE channels ADD COLUMN worktree_branch TEXT NULL;
            ALTER TABLE channels ADD COLUMN worktree_dir TEXT NULL;
            """),
        new(22, "message senders", """
            -- Who wrote a chat message, as the platform knows them (a Discord or Telegram user id; NULL for messages
            -- of the API, the agent and Loop): a member may stop the runs of their own messages only.
            ALTER TABLE messages ADD COLUMN sender TEXT NULL;
            """),
    ];

    /// <summary>The same steps for PostgreSQL. Text compares byte by byte there too (the "C"
    /// collation, as in SQLite): ids are time-ordered strings that keyset paging compares, and a
    /// database's linguistic collation would order them otherwise.</summary>
    public static readonly IReadOnlyList<Migration> Postgres = Sqlite
        .Select(m => m with
        {
            Sql = m.Sql
                .Replace("INTEGER PRIMARY KEY AUTOINCREMENT", "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY", StringComparison.Ordinal)
                .Replace(" TEXT", " TEXT COLLATE \"C\"", StringComparison.Ordinal),
        })
        .ToList();
}
