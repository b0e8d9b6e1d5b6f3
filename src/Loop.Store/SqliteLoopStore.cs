namespace Loop.Store;

using System.Security.Cryptography;
using Dapper;
using Loop.Domain;
using Loop.Domain.Channels;
using Loop.Domain.Runs;
using Microsoft.Data.Sqlite;

/// <summary>The store on one node: a SQLite file in WAL mode. Writes go through one connection, one
/// at a time, so callers never meet SQLITE_BUSY; reads use their own pooled connections and run
/// alongside the writer.</summary>
/// <remarks>synchronous=NORMAL in WAL mode survives a crash of this process (the OS holds the
/// written pages); only a power loss can drop the last commits.</remarks>
public sealed partial class SqliteLoopStore : ILoopStore, IAsyncDisposable, IDisposable
{
    private const int BusyTimeoutMs = 5000;
    private const string InstanceIdKey = "instance_id";

    private readonly string _connectionString;
    private readonly string _probeConnectionString;
    private readonly TimeProvider _time;
    private readonly SqliteConnection _writer;
    private readonly SemaphoreSlim _writeGate = new(1, 1);
    private string? _instanceId;
    private static readonly TimeSpan CheckpointEvery = TimeSpan.FromSeconds(1);
    private readonly ITimer _checkpoints;
    private int _checkpointing;
    private bool _disposed;

    public SqliteLoopStore(string databasePath, TimeProvider time)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(databasePath);
        ArgumentNullException.ThrowIfNull(time);

        var fullPath = Path.GetFullPath(databasePath);
        Directory.CreateDirectory(Path.GetDirectoryName(fullPath)!);
        KeepPrivate(fullPath);
        DatabasePath = fullPath;
        _time = time;
        _connectionString = new SqliteConnectionStringBuilder
        {
            DataSource = fullPath,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Cache = SqliteCacheMode.Private,
            ForeignKeys = true,
            Pooling = true,
            // Also how long a command waits out SQLITE_BUSY before failing.
            DefaultTimeout = BusyTimeoutMs / 1000,
        }.ToString();
        _probeConnectionString = new SqliteConnectionStringBuilder(_connectionString)
        {
            Mode = SqliteOpenMode.ReadWrite,
            Pooling = false,
        }.ToString();

        // Opened here so the file exists and is in WAL mode before any reader opens it.
        _writer = Open();
        // No automatic checkpoints: SQLite runs them inside whichever commit crosses the threshold,
        // which then takes milliseconds. A timer checkpoints in the background instead.
        Execute(_writer, $"PRAGMA journal_mode = WAL; PRAGMA busy_timeout = {BusyTimeoutMs}; PRAGMA synchronous = NORMAL; PRAGMA wal_autocheckpoint = 0;");
        _checkpoints = time.CreateTimer(_ => Checkpoint(), null, CheckpointEvery, CheckpointEvery);
    }

    /// <summary>Makes the database and its -wal and -shm files readable only by their owner (0600):
    /// they hold the conversations. SQLite gives the -wal and -shm files it creates the database
    /// file's mode, so creating that one private is enough for new stores; older ones are tightened.</summary>
    private static void KeepPrivate(string databasePath)
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }
        const UnixFileMode Private = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        try
        {
            // An empty file is an empty SQLite database.
            using var created = new FileStream(databasePath, new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, UnixCreateMode = Private });
        }
        catch (IOException) when (File.Exists(databasePath))
        {
            // It exists already.
        }
        foreach (var file in new[] { databasePath, databasePath + "-wal", databasePath + "-shm" })
        {
            if (File.Exists(file) && (File.GetUnixFileMode(file) & ~Private) != 0)
            {
                File.SetUnixFileMode(file, Private);
            }
        }
    }

    /// <summary>Copies the write-ahead log back into the database without blocking writers or
    /// readers (PASSIVE), off the write path.</summary>
    private void Checkpoint()
    {
        if (_disposed || Interlocked.Exchange(ref _checkpointing, 1) == 1)
        {
            return;
        }
        try
        {
            using var connection = Open();
            Execute(connection, "PRAGMA wal_checkpoint(PASSIVE);");
        }
        catch (SqliteException)
        {
            // Busy or closing: the next tick tries again.
        }
        finally
        {
            Interlocked.Exchange(ref _checkpointing, 0);
        }
    }

    /// <summary>The full path of the database file.</summary>
    public string DatabasePath { get; }

    public async Task MigrateAsync(CancellationToken cancellationToken)
    {
        await WriteAsync(async (connection, tx) =>
            await connection.ExecuteAsync(Command(SqliteMigrations.SchemaVersionTable, null, tx, cancellationToken)), cancellationToken);

        foreach (var migration in SqliteMigrations.All)
        {
            // Checked inside the write transaction, so two processes starting together apply it once.
            await WriteAsync(async (connection, tx) =>
            {
                var applied = await connection.ExecuteScalarAsync<long>(Command(
                    "SELECT COUNT(*) FROM schema_version WHERE version = @version",
                    new { version = migration.Version }, tx, cancellationToken));
                if (applied > 0)
                {
                    return 0;
                }
                await connection.ExecuteAsync(Command(migration.Sql, null, tx, cancellationToken));
                return await connection.ExecuteAsync(Command(
                    "INSERT INTO schema_version (version, name, applied_at) VALUES (@version, @name, @applied_at)",
                    new { version = migration.Version, name = migration.Name, applied_at = Now() }, tx, cancellationToken));
            }, cancellationToken);
        }

        await WriteAsync((connection, tx) => connection.ExecuteAsync(Command(
            "INSERT INTO meta (key, value) VALUES (@key, @value) ON CONFLICT (key) DO NOTHING",
            new { key = InstanceIdKey, value = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8)) },
            tx, cancellationToken)), cancellationToken);
    }

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

    public Task<(Channel Channel, bool Created)> EnsureChannelAsync(string? dirPath, string? name, CancellationToken cancellationToken)
    {
        var dir = dirPath is null ? null : NormalizeDir(dirPath);
        var id = Ids.New("ch", _time);
        var channelName = string.IsNullOrWhiteSpace(name) ? DefaultChannelName(id, dir) : name.Trim();
        var now = Now();

        return WriteAsync(async (connection, tx) =>
        {
            // ON CONFLICT keeps this idempotent per directory even against another process on the same file.
            var inserted = await connection.ExecuteAsync(Command("""
                INSERT INTO channels (id, name, dir_path, session_id, created_at, updated_at)
                VALUES (@id, @name, @dir_path, NULL, @now, @now)
                ON CONFLICT (dir_path) DO NOTHING
                """, new { id, name = channelName, dir_path = dir, now }, tx, cancellationToken));

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
    private async Task SaveSessionAsync(SqliteConnection connection, SqliteTransaction tx, SessionHolder holder, string holderId, string? sessionId, CancellationToken cancellationToken)
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

    private static async Task<ChatMessage> InsertMessageAsync(SqliteConnection connection, SqliteTransaction tx, NewMessage message, DateTimeOffset createdAt, CancellationToken cancellationToken)
    {
        try
        {
            // QuerySingle, not ExecuteScalar: SQLite reports a constraint failure of an INSERT ... RETURNING
            // only on the step after the returned row, and a scalar read stops before it (the row is then
            // silently rolled back while its id is handed out).
            var id = await connection.QuerySingleAsync<long>(Command("""
                INSERT INTO messages (channel_id, role, author, content, created_at, run_id, external_id)
                VALUES (@channel_id, @role, @author, @content, @created_at, @run_id, @external_id)
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
                }, tx, cancellationToken));
            return new ChatMessage(id, message.ChannelId, message.Role, message.Author, message.Content, createdAt, message.RunId, message.ExternalId);
        }
        catch (SqliteException e) when (IsForeignKeyViolation(e))
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
                await connection.ExecuteAsync(Command(RunRow.Insert, RunRow.Parameters(run), tx, cancellationToken));
            }
            catch (SqliteException e) when (IsForeignKeyViolation(e))
            {
                throw new KeyNotFoundException($"There is no channel {run.ChannelId}.", e);
            }

            // Only messages still pending are taken: one already handed to another run stays with it.
            foreach (var chunk in messageIds.Distinct().Chunk(500))
            {
                await connection.ExecuteAsync(Command("""
                    UPDATE messages SET run_id = @run_id
                    WHERE id IN @ids AND channel_id = @channel_id AND role = 'user' AND run_id IS NULL
                    """, new { run_id = run.Id, ids = chunk, channel_id = run.ChannelId }, tx, cancellationToken));
            }
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
            await WriteRunAsync(connection, tx, run, cancellationToken);
            var stored = await InsertMessageAsync(connection, tx, reply, createdAt, cancellationToken);
            if (session is not null)
            {
                await SaveSessionAsync(connection, tx, session.Holder, session.HolderId, session.SessionId, cancellationToken);
            }
            return stored;
        }, cancellationToken);
    }

    private static async Task WriteRunAsync(SqliteConnection connection, SqliteTransaction tx, Run run, CancellationToken cancellationToken)
    {
        var updated = await connection.ExecuteAsync(Command("""
            UPDATE runs SET status = @status, started_at = @started_at, finished_at = @finished_at,
                exit_code = @exit_code, reply = @reply, error = @error, session_id = @session_id,
                model = @model, container_id = @container_id, input_tokens = @input_tokens,
                output_tokens = @output_tokens, cache_creation_input_tokens = @cache_creation_input_tokens,
                cache_read_input_tokens = @cache_read_input_tokens, cost_usd = @cost_usd,
                num_turns = @num_turns, duration_ms = @duration_ms
            WHERE id = @id
            """, RunRow.Parameters(run), tx, cancellationToken));
        if (updated != 1)
        {
            throw new KeyNotFoundException($"There is no run {run.Id}.");
        }
    }

    public Task<Run?> GetRunAsync(string runId, CancellationToken cancellationToken) =>
        ReadAsync(async connection =>
        {
            var row = await connection.QuerySingleOrDefaultAsync<RunRow>(Command(
                RunRow.Select + " WHERE id = @id", new { id = runId }, null, cancellationToken));
            return row?.ToRun();
        }, cancellationToken);

    public Task<IReadOnlyList<Run>> ListRunsAsync(string channelId, int limit, string? beforeRunId, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(limit);
        // Two spellings rather than "@before IS NULL OR id < @before", which keeps the planner off the index range.
        var sql = beforeRunId is null
            ? RunRow.Select + " WHERE channel_id = @channel_id ORDER BY id DESC LIMIT @limit"
            : RunRow.Select + " WHERE channel_id = @channel_id AND id < @before ORDER BY id DESC LIMIT @limit";
        return ReadAsync(async connection =>
        {
            var rows = await connection.QueryAsync<RunRow>(Command(
                sql, new { channel_id = channelId, before = beforeRunId, limit }, null, cancellationToken));
            return (IReadOnlyList<Run>)rows.Select(r => r.ToRun()).ToList();
        }, cancellationToken);
    }

    public Task<IReadOnlyList<Run>> FailInterruptedRunsAsync(string reason, DateTimeOffset now, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(reason);
        return WriteAsync(async (connection, tx) =>
        {
            // A task run claimed ahead for an instant still to come had not begun: it stays queued.
            const string Interrupted = "(status = 'running' OR (status = 'queued' AND (task_id IS NULL OR created_at <= @now)))";
            var at = new { now = Columns.ToMs(now) };
            var before = (await connection.QueryAsync<RunRow>(Command(
                RunRow.Select + $" WHERE {Interrupted} ORDER BY id", at, tx, cancellationToken)))
                .Select(r => r.ToRun())
                .ToList();
            if (before.Count == 0)
            {
                return (IReadOnlyList<Run>)before;
            }

            await connection.ExecuteAsync(Command($"""
                UPDATE messages SET run_id = NULL
                WHERE role = 'user' AND run_id IN (SELECT id FROM runs WHERE {Interrupted})
                """, at, tx, cancellationToken));
            await connection.ExecuteAsync(Command($"""
                UPDATE runs SET status = @failed, error = @reason, finished_at = @now
                WHERE {Interrupted}
                """, new { failed = RunStatus.Failed.ToWire(), reason, now = Columns.ToMs(now) }, tx, cancellationToken));
            return before;
        }, cancellationToken);
    }

    public async Task PingAsync(CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        try
        {
            // A connection of its own: a pooled one keeps reading the file it opened after that file
            // is deleted or replaced, and one that may create the file would make a new empty database.
            await using var connection = new SqliteConnection(_probeConnectionString);
            await connection.OpenAsync(cancellationToken);
            // Reads the header, the schema and a table of Loop's: what any request needs first.
            await connection.ExecuteScalarAsync<string?>(Command(
                "SELECT value FROM meta WHERE key = @key", new { key = InstanceIdKey }, null, cancellationToken));
        }
        catch (SqliteException e)
        {
            throw new StoreUnavailableException(File.Exists(DatabasePath) ? e.Message : "the database file is gone (deleted or moved while loop serve runs)", e);
        }
    }

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        _checkpoints.Dispose();
        // Taking the gate lets a write in flight finish before its connection goes away.
        _writeGate.Wait();
        try
        {
            Execute(_writer, "PRAGMA wal_checkpoint(TRUNCATE);");
            _writer.Dispose();
            // Pooled readers would otherwise keep the file open after the store is gone.
            using var forPool = new SqliteConnection(_connectionString);
            SqliteConnection.ClearPool(forPool);
        }
        finally
        {
            _writeGate.Release();
        }
    }

    public ValueTask DisposeAsync()
    {
        Dispose();
        return ValueTask.CompletedTask;
    }

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

    private async Task<T> WriteAsync<T>(Func<SqliteConnection, SqliteTransaction, Task<T>> work, CancellationToken cancellationToken)
    {
        await _writeGate.WaitAsync(cancellationToken);
        try
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            // BEGIN IMMEDIATE: take the write lock up front rather than upgrading mid-transaction.
            using var tx = _writer.BeginTransaction(deferred: false);
            var result = await work(_writer, tx);
            tx.Commit();
            return result;
        }
        finally
        {
            _writeGate.Release();
        }
    }

    private async Task<T> ReadAsync<T>(Func<SqliteConnection, Task<T>> work, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        cancellationToken.ThrowIfCancellationRequested();
        await using var connection = Open();
        return await work(connection);
    }

    private SqliteConnection Open()
    {
        // Readers need no per-connection pragmas: in WAL mode they never wait for the writer, and
        // synchronous only matters to the one writer connection (set once above).
        var connection = new SqliteConnection(_connectionString);
        connection.Open();
        return connection;
    }

    private static void Execute(SqliteConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    private static bool IsForeignKeyViolation(SqliteException e) => e.SqliteExtendedErrorCode == 787; // SQLITE_CONSTRAINT_FOREIGNKEY

    private static CommandDefinition Command(string sql, object? parameters, SqliteTransaction? tx, CancellationToken cancellationToken) =>
        new(sql, parameters, tx, cancellationToken: cancellationToken);
}
