namespace Loop.Store;

using System.Data.Common;
using System.Globalization;
using Dapper;
using Loop.Domain.Channels;
using Loop.Domain.Runs;

/// <summary>Conversions between domain values and their column forms. Times are unix milliseconds
/// UTC; costs are invariant decimal text.</summary>
internal static class Columns
{
    public static long ToMs(DateTimeOffset value) => value.ToUnixTimeMilliseconds();

    public static long? ToMs(DateTimeOffset? value) => value?.ToUnixTimeMilliseconds();

    public static DateTimeOffset FromMs(long value) => DateTimeOffset.FromUnixTimeMilliseconds(value);

    public static DateTimeOffset? FromMs(long? value) => value is { } ms ? FromMs(ms) : null;

    /// <summary>The instant as the store keeps it (millisecond precision, UTC).</summary>
    public static DateTimeOffset Truncate(DateTimeOffset value) => FromMs(ToMs(value));

    public static DateTimeOffset? Truncate(DateTimeOffset? value) => FromMs(ToMs(value));

    public static string ToText(decimal value) => value.ToString(CultureInfo.InvariantCulture);

    public static decimal FromText(string value) => decimal.Parse(value, NumberStyles.Number, CultureInfo.InvariantCulture);
}

// Dapper fills these from the aliased SELECT lists below; the domain records are built from them
// so the column forms (ms, text) never leak past this file.

/// <summary>A channel's columns; <see cref="ChannelOverviewRow"/> adds its queue and runs.</summary>
internal class ChannelRow
{
    public const string Select = """
        SELECT id AS Id, name AS Name, dir_path AS DirPath, session_id AS SessionId,
               created_at AS CreatedAt, updated_at AS UpdatedAt, platform AS Platform, external_id AS ExternalId,
               mode AS Mode, model AS Model, progress AS Progress,
               parent_id AS ParentId, fork_session_id AS ForkSessionId, fork_dir_path AS ForkDirPath,
               fork_worktree AS ForkWorktree, worktree_repo AS WorktreeRepo, worktree_path AS WorktreePath,
               worktree_branch AS WorktreeBranch, worktree_dir AS WorktreeDir
        FROM channels
        """;

    public string Id { get; set; } = "";
    public string Name { get; set; } = "";
    public string? DirPath { get; set; }
    public string? SessionId { get; set; }
    public long CreatedAt { get; set; }
    public long UpdatedAt { get; set; }
    public string? Platform { get; set; }
    public string? ExternalId { get; set; }
    public string Mode { get; set; } = "container";
    public string? Model { get; set; }
    public string Progress { get; set; } = "tools";
    public string? ParentId { get; set; }
    public string? ForkSessionId { get; set; }
    public string? ForkDirPath { get; set; }
    public long ForkWorktree { get; set; }
    public string? WorktreeRepo { get; set; }
    public string? WorktreePath { get; set; }
    public string? WorktreeBranch { get; set; }
    public string? WorktreeDir { get; set; }

    public Channel ToChannel() =>
        new(Id, Name, DirPath, SessionId, Columns.FromMs(CreatedAt), Columns.FromMs(UpdatedAt), Platform, ExternalId,
            ChannelModeExtensions.FromWire(Mode), Model, ChannelProgressExtensions.FromWire(Progress),
            ParentId is null ? null : new ChannelFork(ParentId, ForkSessionId, ForkDirPath, ForkWorktree != 0,
                WorktreePath is null ? null : new Loop.Domain.Channels.ForkWorktree(WorktreeRepo!, WorktreePath, WorktreeBranch!, WorktreeDir!)));
}

internal sealed class MessageRow
{
    public const string Select = """
        SELECT id AS Id, channel_id AS ChannelId, role AS Role, author AS Author, content AS Content,
               created_at AS CreatedAt, run_id AS RunId, external_id AS ExternalId, sender AS Sender
        FROM messages
        """;

    public long Id { get; set; }
    public string ChannelId { get; set; } = "";
    public string Role { get; set; } = "";
    public string Author { get; set; } = "";
    public string Content { get; set; } = "";
    public long CreatedAt { get; set; }
    public string? RunId { get; set; }
    public string? ExternalId { get; set; }
    public string? Sender { get; set; }

    public ChatMessage ToMessage() =>
        new(Id, ChannelId, MessageRoleExtensions.FromWire(Role), Author, Content, Columns.FromMs(CreatedAt), RunId, ExternalId, Sender);
}

internal sealed class RunRow
{
    public const string Select = """
        SELECT id AS Id, channel_id AS ChannelId, task_id AS TaskId, status AS Status, prompt AS Prompt,
               created_at AS CreatedAt, started_at AS StartedAt, finished_at AS FinishedAt,
               exit_code AS ExitCode, reply AS Reply, error AS Error, session_id AS SessionId,
               model AS Model, container_id AS ContainerId,
               input_tokens AS InputTokens, output_tokens AS OutputTokens,
               cache_creation_input_tokens AS CacheCreationInputTokens,
               cache_read_input_tokens AS CacheReadInputTokens,
               cost_usd AS CostUsd, num_turns AS NumTurns, duration_ms AS DurationMs
        FROM runs
        """;

    public const string Insert = """
        INSERT INTO runs (id, channel_id, task_id, status, prompt, created_at, started_at, finished_at,
            exit_code, reply, error, session_id, model, container_id, input_tokens, output_tokens,
            cache_creation_input_tokens, cache_read_input_tokens, cost_usd, num_turns, duration_ms, node)
        VALUES (@id, @channel_id, @task_id, @status, @prompt, @created_at, @started_at, @finished_at,
            @exit_code, @reply, @error, @session_id, @model, @container_id, @input_tokens, @output_tokens,
            @cache_creation_input_tokens, @cache_read_input_tokens, @cost_usd, @num_turns, @duration_ms, @node)
        """;

    public string Id { get; set; } = "";
    public string ChannelId { get; set; } = "";
    public string? TaskId { get; set; }
    public string Status { get; set; } = "";
    public string Prompt { get; set; } = "";
    public long CreatedAt { get; set; }
    public long? StartedAt { get; set; }
    public long? FinishedAt { get; set; }
    public long? ExitCode { get; set; }
    public string? Reply { get; set; }
    public string? Error { get; set; }
    public string? SessionId { get; set; }
    public string? Model { get; set; }
    public string? ContainerId { get; set; }
    public long InputTokens { get; set; }
    public long OutputTokens { get; set; }
    public long CacheCreationInputTokens { get; set; }
    public long CacheReadInputTokens { get; set; }
    public string CostUsd { get; set; } = "0";
    public long NumTurns { get; set; }
    public long DurationMs { get; set; }

    public Run ToRun() => new(
        Id,
        ChannelId,
        TaskId,
        RunStatusExtensions.FromWire(Status),
        Prompt,
        Columns.FromMs(CreatedAt),
        Columns.FromMs(StartedAt),
        Columns.FromMs(FinishedAt),
        ExitCode is { } code ? checked((int)code) : null,
        Reply,
        Error,
        SessionId,
        Model,
        ContainerId,
        new RunUsage(
            InputTokens,
            OutputTokens,
            CacheCreationInputTokens,
            CacheReadInputTokens,
            Columns.FromText(CostUsd),
            checked((int)NumTurns),
            DurationMs));

    /// <summary>An INSERT of one run whose parameters <see cref="Bind"/> sets: reuse it for many
    /// runs in one transaction, so its statement is prepared once.</summary>
    // Any run: InsertCommand reads the column names from it.
    private static readonly Run Placeholder = new("", "", null, RunStatus.Queued, "", DateTimeOffset.UnixEpoch,
        null, null, null, null, null, null, null, null, RunUsage.None);

    /// <remarks>Its runs are queued for no node in particular (task runs, for whichever node hosts their channel).</remarks>
    public static DbCommand InsertCommand(DbConnection connection, DbTransaction tx)
    {
        var command = connection.CreateCommand();
        command.Transaction = tx;
        command.CommandText = Insert;
        foreach (var name in ColumnValues(Placeholder).Select(c => c.Name).Append("node"))
        {
            var parameter = command.CreateParameter();
            parameter.ParameterName = name;
            command.Parameters.Add(parameter);
        }
        return command;
    }

    public static void Bind(DbCommand insert, Run run)
    {
        foreach (var (name, value) in ColumnValues(run))
        {
            insert.Parameters[name].Value = value ?? DBNull.Value;
        }
        insert.Parameters["node"].Value = DBNull.Value;
    }

    /// <summary>The run's columns as Dapper parameters (names match the snake_case columns), and
    /// the <paramref name="node"/> that takes it, if one does.</summary>
    public static DynamicParameters Parameters(Run run, string? node = null)
    {
        var parameters = new DynamicParameters();
        foreach (var (name, value) in ColumnValues(run))
        {
            parameters.Add(name, value);
        }
        parameters.Add("node", node, System.Data.DbType.String);
        return parameters;
    }

    // The one list of a run's columns and values, for Dapper and for the prepared insert alike.
    private static (string Name, object? Value)[] ColumnValues(Run run) =>
    [
        ("id", run.Id),
        ("channel_id", run.ChannelId),
        ("task_id", run.TaskId),
        ("status", run.Status.ToWire()),
        ("prompt", run.Prompt),
        ("created_at", Columns.ToMs(run.CreatedAt)),
        ("started_at", Columns.ToMs(run.StartedAt)),
        ("finished_at", Columns.ToMs(run.FinishedAt)),
        ("exit_code", run.ExitCode),
        ("reply", run.Reply),
        ("error", run.Error),
        ("session_id", run.SessionId),
        ("model", run.Model),
        ("container_id", run.ContainerId),
        ("input_tokens", run.Usage.InputTokens),
        ("output_tokens", run.Usage.OutputTokens),
        ("cache_creation_input_tokens", run.Usage.CacheCreationInputTokens),
        ("cache_read_input_tokens", run.Usage.CacheReadInputTokens),
        ("cost_usd", Columns.ToText(run.Usage.CostUsd)),
        ("num_turns", run.Usage.NumTurns),
        ("duration_ms", run.Usage.DurationMs),
    ];
}
