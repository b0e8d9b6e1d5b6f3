namespace Loop.Store;

using System.Data.Common;
using System.Security.Cryptography;
using Dapper;
using Loop.Domain;
using Loop.Domain.Channels;
using Loop.Domain.Runs;

/// <summary>Loop's store in SQL, shared by its two databases: SQLite on one node
/// (<see cref="SqliteLoopStore"/>) and PostgreSQL in a cluster (<see cref="PostgresLoopStore"/>).
/// The statements are written in the SQL both understand; what differs (connections, how writes
/// are serialized, a few expressions) is each subclass's.</summary>
public abstract partial class SqlLoopStore : ILoopStore, IAsyncDisposable
{
    protected const string InstanceIdKey = "instance_id";

    private readonly TimeProvider _time;
    private string? _instanceId;

    protected SqlLoopStore(TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(time);
        _time = time;
    }

    /// <summary>The node this store object serves: runs it creates for messages or starts are
    /// marked with it. Null on a store only one node uses.</summary>
    public string? Node { get; init; }

    public Task<int> MigrateAsync(CancellationToken cancellationToken) =>
        // One transaction under one lock: nodes starting together wait for the first to upgrade, then
        // find every step applied; a step that fails leaves the schema as it was.
        WriteAsync(async (connection, tx) =>
        {
            await LockAsync(connection, tx, "loop.migrate", cancellationToken);
            await connection.ExecuteAsync(Command(Schema.VersionTable, null, tx, cancellationToken));
            var applied = (await connection.QueryAsync<long>(Command("SELECT version FROM schema_version", null, tx, cancellationToken))).ToHashSet();
            foreach (var migration in Migrations.Where(m => !applied.Contains(m.Version)))
            {
                await connection.ExecuteAsync(Command(migration.Sql, null, tx, cancellationToken));
                await connection.ExecuteAsync(Command(
                    "INSERT INTO schema_version (version, name, applied_at) VALUES (@version, @name, @applied_at)",
                    new { version = migration.Version, name = migration.Name, applied_at = Now() }, tx, cancellationToken));
            }
            await connection.ExecuteAsync(Command(
                "INSERT INTO meta (key, value) VALUES (@key, @value) ON CONFLICT (key) DO NOTHING",
                new { key = InstanceIdKey, value = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8)) },
                tx, cancellationToken));
            return Migrations[^1].Version;
        }, cancellationToken);

    public async Task<string> GetInstanceIdAsync(CancellationToken cancellationToken)
    {
        if (_instanceId is { } known)
        {
            return known;
        }
        var id = await ReadAsync(connection => connection.QuerySingleOrDefaultAsync<string?>(Command(
            "SELECT value FROM meta WHERE key = @key", new { key = InstanceIdKey }, null, cancellationToken)), cancellationToken);
        return _instanceId = id ?? throw new InvalidOperationException("The store has no instance id: call MigrateAsync first.");
    }

    public Task<(Channel Channel, bool Created)> EnsureChannelAsync(string? dirPath, string? name, ChannelAgent agent, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(agent);
        var dir = dirPath is null ? null : NormalizeDir(dirPath);
        var id = Ids.New("ch", _time);
        var channelName = string.IsNullOrWhiteSpace(name) ? DefaultChannelName(id, dir) : name.Trim();
        var now = Now();

        return WriteAsync(async (connection, tx) =>
        {
            // ON CONFLICT keeps this idempotent per directory even against another process on the same file.
            var inserted = await connection.ExecuteAsync(Command("""
                INSERT INTO channels (id, name, dir_path, session_id, created_at, updated_at, mode, model, progress)
                VALUES (@id, @name, @dir_path, NULL, @now, @now, @mode, @model, @progress)
                ON CONFLICT (dir_path) DO NOTHING
                """, new { id, name = channelName, dir_path = dir, now, mode = agent.Mode.ToWire(), model = agent.Model, progress = agent.Progress.ToWire() }, tx, cancellationToken));

            var row = dir is null
                ? await connection.QuerySingleAsync<ChannelRow>(Command(
                    ChannelRow.Select + " WHERE id = @id", new { id }, tx, cancellationToken))
                : await connection.QuerySingleAsync<ChannelRow>(Command(
                    ChannelRow.Select + " WHERE dir_path = @dir_path", new { dir_path = dir }, tx, cancellationToken));
            return (row.ToChannel(), inserted == 1);
        }, cancellationToken);
    }

    public Task<Channel?> GetChannelAsync(string channelId, CancellationToken cancellationToken) =>
        ReadAsync(async connection =>
        {
            var row = await connection.QuerySingleOrDefaultAsync<ChannelRow>(Command(
                ChannelRow.Select + " WHERE id = @id", new { id = channelId }, null, cancellationToken));
            return row?.ToChannel();
        }, cancellationToken);

    public Task<IReadOnlyList<Channel>> ListChannelsAsync(CancellationToken cancellationToken) =>
        ReadAsync(async connection =>
        {
            var rows = await connection.QueryAsync<ChannelRow>(Command(
                ChannelRow.Select + " ORDER BY id", null, null, cancellationToken));
            return (IReadOnlyList<Channel>)rows.Select(r => r.ToChannel()).ToList();
        }, cancellationToken);

    public Task SetChannelSessionAsync(string channelId, string? sessionId, CancellationToken cancellationToken) =>
        WriteAsync(async (connection, tx) =>
        {
            await SaveSessionAsync(connection, tx, SessionHolder.Channel, channelId, sessionId, cancellationToken);
            return 0;
        }, cancellationToken);

    /// <summary>Keeps a session id for its holder. A task deleted meanwhile has nothing left to keep it for.</summary>
    private async Task SaveSessionAsync(DbConnection connection, DbTransaction tx, SessionHolder holder, string holderId, string? sessionId, CancellationToken cancellationToken)
    {
        if (holder == SessionHolder.Task)
        {
            await connection.ExecuteAsync(Command(
                "UPDATE tasks SET session_id = @session_id WHERE id = @id",
                new { id = holderId, session_id = sessionId }, tx, cancellationToken));
            return;
        }
        var updated = await connection.ExecuteAsync(Command(
            "UPDATE channels SET session_id = @session_id, updated_at = @now WHERE id = @id",
            new { id = holderId, session_id = sessionId, now = Now() }, tx, cancellationToken));
        if (updated != 1)
        {
            throw new KeyNotFoundException($"There is no channel {holderId}.");
        }
    }

    public Task<ChatMessage> AppendMessageAsync(NewMessage message, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(message);
        var createdAt = Columns.Truncate(_time.GetUtcNow());

        return WriteAsync((connection, tx) => InsertMessageAsync(connection, tx, message, createdAt, cancellationToken), cancellationToken);
    }

    private async Task<ChatMessage> InsertMessageAsync(DbConnection connection, DbTransaction tx, NewMessage message, DateTimeOffset createdAt, CancellationToken cancellationToken)
    {
        // Readers page a conversation by id: within a channel, ids must become visible in their
        // order, so its messages are stored one transaction at a time.
        await LockAsync(connection, tx, "channel:" + message.ChannelId, cancellationToken);
        try
        {
            if (message.ExternalId is { } externalId && await connection.QuerySingleOrDefaultAsync<MessageRow>(Command(
                MessageRow.Select + " WHERE channel_id = @channel_id AND external_id = @external_id",
                new { channel_id = message.ChannelId, external_id = externalId }, tx, cancellationToken)) is { } delivered)
            {
                return delivered.ToMessage();
            }
            // QuerySingle, not ExecuteScalar: SQLite reports a constraint failure of an INSERT ... RETURNING
            // only on the step after the returned row, and a scalar read stops before it (the row is then
            // silently rolled back while its id is handed out).
            var id = await connection.QuerySingleAsync<long>(Command("""
                INSERT INTO messages (channel_id, role, author, content, created_at, run_id, external_id, sender)
                VALUES (@channel_id, @role, @author, @content, @created_at, @run_id, @external_id, @sender)
                RETURNING id
                """,
                new
                {
                    channel_id = message.ChannelId,
                    role = message.Role.ToWire(),
                    author = message.Author,
                    content = message.Content,
                    created_at = Columns.ToMs(createdAt),
                    run_id = message.RunId,
                    external_id = message.ExternalId,
                    sender = message.Sender,
                }, tx, cancellationToken));
            return new ChatMessage(id, message.ChannelId, message.Role, message.Author, message.Content, createdAt, message.RunId, message.ExternalId, message.Sender);
        }
        catch (DbException e) when (IsForeignKeyViolation(e))
        {
            throw new KeyNotFoundException($"There is no channel {message.ChannelId} or no run {message.RunId}.", e);
        }
    }

    public Task<IReadOnlyList<ChatMessage>> ListMessagesAsync(string channelId, long afterId, int limit, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(limit);
        return ReadAsync(async connection =>
        {
            var rows = await connection.QueryAsync<MessageRow>(Command(
                MessageRow.Select + " WHERE channel_id = @channel_id AND id > @after_id ORDER BY id LIMIT @limit",
                new { channel_id = channelId, after_id = afterId, limit }, null, cancellationToken));
            return (IReadOnlyList<ChatMessage>)rows.Select(r => r.ToMessage()).ToList();
        }, cancellationToken);
    }

    public Task<IReadOnlyList<ChatMessage>> ListLatestMessagesAsync(string channelId, long? beforeId, int limit, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(limit);
        return ReadAsync(async connection =>
        {
            var rows = await connection.QueryAsync<MessageRow>(Command(
                MessageRow.Select + " WHERE channel_id = @channel_id AND id < @before_id ORDER BY id DESC LIMIT @limit",
                new { channel_id = channelId, before_id = beforeId ?? long.MaxValue, limit }, null, cancellationToken));
            return (IReadOnlyList<ChatMessage>)rows.Reverse().Select(r => r.ToMessage()).ToList();
        }, cancellationToken);
    }

    // Spelled like ix_messages_pending's WHERE so the planner uses that small index.
    private const string PendingMessagesSql = MessageRow.Select + " WHERE channel_id = @channel_id AND run_id IS NULL AND role = 'user' ORDER BY id";

    public Task<IReadOnlyList<ChatMessage>> ListPendingMessagesAsync(string channelId, CancellationToken cancellationToken) =>
        ReadAsync(async connection =>
        {
            var rows = await connection.QueryAsync<MessageRow>(Command(PendingMessagesSql, new { channel_id = channelId }, null, cancellationToken));
            return (IReadOnlyList<ChatMessage>)rows.Select(r => r.ToMessage()).ToList();
        }, cancellationToken);

    public Task<ChannelWork?> GetChannelWorkAsync(string channelId, DateTimeOffset now, CancellationToken cancellationToken) =>
        ReadAsync(async connection =>
        {
            var parameters = new { channel_id = channelId };
            var taskRun = await connection.QueryFirstOrDefaultAsync<RunRow>(Command(NextQueuedTaskRunSql, new { channel_id = channelId, now = Columns.ToMs(now) }, null, cancellationToken));
            var pending = await connection.QueryAsync<MessageRow>(Command(PendingMessagesSql, parameters, null, cancellationToken));
            if (taskRun is null && !pending.Any())
            {
                return new ChannelWork(null, null, []);
            }
            var channel = await connection.QuerySingleOrDefaultAsync<ChannelRow>(Command(
                ChannelRow.Select + " WHERE id = @channel_id", parameters, null, cancellationToken));
            return channel is null ? null : new ChannelWork(channel.ToChannel(), taskRun?.ToRun(), pending.Select(r => r.ToMessage()).ToList());
        }, cancellationToken);

    public Task<IReadOnlyList<string>> ListChannelsWithPendingMessagesAsync(CancellationToken cancellationToken) =>
        ReadAsync(async connection =>
        {
            var ids = await connection.QueryAsync<string>(Command(
                "SELECT DISTINCT channel_id FROM messages WHERE run_id IS NULL AND role = 'user' ORDER BY channel_id",
                null, null, cancellationToken));
            return (IReadOnlyList<string>)ids.ToList();
        }, cancellationToken);

    public Task<Run> CreateRunAsync(Run run, IReadOnlyList<long> messageIds, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(run);
        ArgumentNullException.ThrowIfNull(messageIds);

        return WriteAsync(async (connection, tx) =>
        {
            try
            {
                await connection.ExecuteAsync(Command(RunRow.Insert, RunRow.Parameters(run, Node), tx, cancellationToken));
            }
            catch (DbException e) when (IsForeignKeyViolation(e))
            {
                throw new KeyNotFoundException($"There is no channel {run.ChannelId}.", e);
            }

            // Only messages still pending are taken: one already handed to another run stays with it.
            await connection.ExecuteAsync(Command($"""
                UPDATE messages SET run_id = @run_id
                WHERE {InListSql("id", "@ids")} AND channel_id = @channel_id AND role = 'user' AND run_id IS NULL
                """, new { run_id = run.Id, ids = ListParameter(messageIds.Distinct().ToList()), channel_id = run.ChannelId }, tx, cancellationToken));
            return AsStored(run);
        }, cancellationToken);
    }

    public Task UpdateRunAsync(Run run, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(run);
        return WriteAsync(async (connection, tx) =>
        {
            await WriteRunAsync(connection, tx, run, cancellationToken);
            return 0;
        }, cancellationToken);
    }

    public Task<ChatMessage> FinishRunAsync(Run run, NewMessage reply, SessionChange? session, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(run);
        ArgumentNullException.ThrowIfNull(reply);
        if (reply.RunId != run.Id || reply.ChannelId != run.ChannelId)
        {
            throw new ArgumentException($"The reply to run {run.Id} must name that run and its channel.", nameof(reply));
        }
        var createdAt = Columns.Truncate(_time.GetUtcNow());

        // One transaction: a crash leaves either the run as it was (recovery fails it and runs its
        // messages again) or the run ended with its reply, never a reply to a run that runs again.
        return WriteAsync(async (connection, tx) =>
        {
            await WriteRunAsync(connection, tx, run, cancellationToken, unlessEnded: true);
            var stored = await InsertMessageAsync(connection, tx, reply, createdAt, cancellationToken);
            if (session is not null)
            {
                await SaveSessionAsync(connection, tx, session.Holder, session.HolderId, session.SessionId, cancellationToken);
            }
            return stored;
        }, cancellationToken);
    }

    /// <param name="unlessEnded">Only a run still queued or running is written: a node taken for dead
    /// and back for a moment must not end again a run another node has reported and run again.</param>
    private static async Task WriteRunAsync(DbConnection connection, DbTransaction tx, Run run, CancellationToken cancellationToken, bool unlessEnded = false)
    {
        var updated = await connection.ExecuteAsync(Command($$"""
            UPDATE runs SET status = @status, prompt = @prompt, started_at = @started_at, finished_at = @finished_at,
                exit_code = @exit_code, reply = @reply, error = @error, session_id = @session_id,
                model = @model, container_id = @container_id, input_tokens = @input_tokens,
                output_tokens = @output_tokens, cache_creation_input_tokens = @cache_creation_input_tokens,
                cache_read_input_tokens = @cache_read_input_tokens, cost_usd = @cost_usd,
                num_turns = @num_turns, duration_ms = @duration_ms
            WHERE id = @id{{(unlessEnded ? " AND status IN ('queued', 'running')" : "")}}
            """, RunRow.Parameters(run), tx, cancellationToken));
        if (updated != 1)
        {
            var exists = unlessEnded && await connection.ExecuteScalarAsync<long>(Command(
                "SELECT COUNT(*) FROM runs WHERE id = @id", new { id = run.Id }, tx, cancellationToken)) == 1;
            throw exists ? new RunEndedElsewhereException(run.Id) : new KeyNotFoundException($"There is no run {run.Id}.");
        }
    }

    public Task<Run?> GetRunAsync(string runId, CancellationToken cancellationToken) =>
        ReadAsync(async connection =>
        {
            var row = await connection.QuerySingleOrDefaultAsync<RunRow>(Command(
                RunRow.Select + " WHERE id = @id", new { id = runId }, null, cancellationToken));
            return row?.ToRun();
        }, cancellationToken);

    public Task<IReadOnlyList<Run>> ListRunsAsync(RunQuery query, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(query);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(query.Limit);
        // Only the conditions asked for, rather than "@x IS NULL OR …", which keeps the planner off the index ranges.
        var conditions = new List<string>();
        if (query.ChannelId is not null)
        {
            conditions.Add("channel_id = @channel_id");
        }
        if (query.TaskId is not null)
        {
            conditions.Add("task_id = @task_id");
        }
        if (query.Status is not null)
        {
            conditions.Add("status = @status");
        }
        if (query.BeforeRunId is not null)
        {
            conditions.Add("id < @before");
        }
        var where = conditions.Count == 0 ? "" : " WHERE " + string.Join(" AND ", conditions);
        return ReadAsync(async connection =>
        {
            var rows = await connection.QueryAsync<RunRow>(Command(
                RunRow.Select + where + " ORDER BY id DESC LIMIT @limit",
                new { channel_id = query.ChannelId, task_id = query.TaskId, status = query.Status?.ToWire(), before = query.BeforeRunId, limit = query.Limit },
                null, cancellationToken));
            return (IReadOnlyList<Run>)rows.Select(r => r.ToRun()).ToList();
        }, cancellationToken);
    }

    public Task<IReadOnlyList<Run>> FailInterruptedRunsAsync(string reason, DateTimeOffset now, string? node, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(reason);
        // A task run claimed ahead for an instant still to come had not begun: it stays queued. In a
        // cluster, a task run no node has started waits for whichever node hosts its channel.
        var interrupted = node is null
            ? "(status = 'running' OR (status = 'queued' AND (task_id IS NULL OR created_at <= @now)))"
            : "node = @node AND (status = 'running' OR (status = 'queued' AND task_id IS NULL))";
        return WriteAsync(async (connection, tx) =>
        {
            // Every node left recovers a dead one's runs: one at a time, so each run is reported once.
            // No chat is told (their messages run again, and that run answers them): nothing to post.
            await LockAsync(connection, tx, "loop.recover", cancellationToken);
            var at = new { now = Columns.ToMs(now), node };
            var before = (await connection.QueryAsync<RunRow>(Command(
                RunRow.Select + $" WHERE {interrupted} ORDER BY id", at, tx, cancellationToken)))
                .Select(r => r.ToRun())
                .ToList();
            if (before.Count == 0)
            {
                return (IReadOnlyList<Run>)before;
            }

            await connection.ExecuteAsync(Command($"""
                UPDATE messages SET run_id = NULL
                WHERE role = 'user' AND run_id IN (SELECT id FROM runs WHERE {interrupted})
                """, at, tx, cancellationToken));
            await connection.ExecuteAsync(Command($"""
                UPDATE runs SET status = @failed, error = @reason, finished_at = @now, reply_posted_at = @now
                WHERE {interrupted}
                """, new { failed = RunStatus.Failed.ToWire(), reason, now = Columns.ToMs(now), node }, tx, cancellationToken));
            return before;
        }, cancellationToken);
    }

    public Task<IReadOnlyList<NodeRuns>> ListRunNodesAsync(CancellationToken cancellationToken) =>
        ReadAsync(async connection => (IReadOnlyList<NodeRuns>)(await connection.QueryAsync<(string Node, long Running, long Queued)>(Command("""
            SELECT node, SUM(CASE WHEN status = 'running' THEN 1 ELSE 0 END), SUM(CASE WHEN status = 'queued' THEN 1 ELSE 0 END)
            FROM runs WHERE status IN ('queued', 'running') AND node IS NOT NULL GROUP BY node ORDER BY node
            """, null, null, cancellationToken))).Select(r => new NodeRuns(r.Node, checked((int)r.Running), checked((int)r.Queued))).ToList(), cancellationToken);

    /// <summary>The form in which a directory is compared and stored: absolute, no trailing separator.</summary>
    public static string NormalizeDir(string dirPath)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(dirPath);
        return Path.TrimEndingDirectorySeparator(Path.GetFullPath(dirPath));
    }

    private static string DefaultChannelName(string channelId, string? dir)
    {
        var lastSegment = dir is null ? "" : Path.GetFileName(dir);
        return lastSegment.Length > 0 ? lastSegment : "channel-" + channelId[^6..];
    }

    /// <summary>The run as a later read returns it: times kept to the millisecond.</summary>
    private static Run AsStored(Run run) => run with
    {
        CreatedAt = Columns.Truncate(run.CreatedAt),
        StartedAt = Columns.Truncate(run.StartedAt),
        FinishedAt = Columns.Truncate(run.FinishedAt),
    };

    private long Now() => Columns.ToMs(_time.GetUtcNow());

    /// <summary>Runs <paramref name="work"/> in a write transaction and commits it; a write that
    /// throws is rolled back.</summary>
    protected abstract Task<T> WriteAsync<T>(Func<DbConnection, DbTransaction, Task<T>> work, CancellationToken cancellationToken);

    /// <summary>A write that <see cref="RollBack{T}"/> can end without committing anything.</summary>
    private async Task<T> WriteOrRollBackAsync<T>(Func<DbConnection, DbTransaction, Task<T>> work, CancellationToken cancellationToken)
    {
        try
        {
            return await WriteAsync(work, cancellationToken);
        }
        catch (RollBack<T> rolledBack)
        {
            return rolledBack.Result;
        }
    }

    /// <summary>Thrown inside <see cref="WriteOrRollBackAsync"/>'s work: the transaction is rolled back
    /// and the write returns <see cref="Result"/>.</summary>
    private sealed class RollBack<T>(T result) : Exception
    {
        public T Result { get; } = result;
    }

    /// <summary>Runs <paramref name="work"/> on a connection of its own, outside any write.</summary>
    protected abstract Task<T> ReadAsync<T>(Func<DbConnection, Task<T>> work, CancellationToken cancellationToken);

    /// <summary>Opens a transaction whose reads all see one snapshot.</summary>
    protected abstract DbTransaction BeginSnapshot(DbConnection connection);

    /// <summary>Holds, until <paramref name="tx"/> ends, a lock that every other writer asking for
    /// <paramref name="name"/> waits for (SQLite's single writer holds every lock already).</summary>
    protected abstract Task LockAsync(DbConnection connection, DbTransaction tx, string name, CancellationToken cancellationToken);

    protected abstract bool IsForeignKeyViolation(DbException e);

    /// <summary>The schema steps of this database, in version order.</summary>
    private protected abstract IReadOnlyList<Migration> Migrations { get; }

    /// <summary>An SQL expression: 1 when <paramref name="haystack"/> contains <paramref name="needle"/>.</summary>
    protected abstract string ContainsSql(string haystack, string needle);

    /// <summary>An SQL expression: the UTC day (yyyy-MM-dd) of a column of unix milliseconds.</summary>
    protected abstract string DayOfSql(string msColumn);

    /// <summary>An SQL expression: whether <paramref name="column"/> is one of the values in the
    /// parameter <paramref name="parameter"/> (bound with <see cref="ListParameter"/>), however many there are.</summary>
    protected abstract string InListSql(string column, string parameter);

    /// <summary>The value bound for <see cref="InListSql"/>'s parameter.</summary>
    protected abstract object ListParameter<T>(IReadOnlyCollection<T> values);

    public abstract Task PingAsync(CancellationToken cancellationToken);

    /// <summary>Where the store is, for logs and health: a file, or a server and database (never a password).</summary>
    public abstract string Location { get; }

    public abstract ValueTask DisposeAsync();

    protected static CommandDefinition Command(string sql, object? parameters, DbTransaction? tx, CancellationToken cancellationToken) =>
        new(sql, parameters, tx, cancellationToken: cancellationToken);
}
