namespace Loop.Store;

using Dapper;
using Loop.Domain;
using Loop.Domain.Channels;
using Loop.Domain.Runs;

public abstract partial class SqlLoopStore
{
    public Task<ChannelPage> ListChannelOverviewsAsync(ChannelListQuery query, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(query);
        ArgumentOutOfRangeException.ThrowIfNegative(query.Offset);
        if (query.Limit is { } limit)
        {
            ArgumentOutOfRangeException.ThrowIfNegativeOrZero(limit);
        }

        var where = new List<string>();
        var parameters = new DynamicParameters();
        parameters.Add("limit", query.Limit ?? int.MaxValue);
        parameters.Add("offset", query.Offset);
        if (!string.IsNullOrEmpty(query.Search))
        {
            // lower() folds ASCII only: other letters match in their own case.
            where.Add($"({ContainsSql("lower(name)", "lower(@search)")} OR {ContainsSql("lower(COALESCE(dir_path, ''))", "lower(@search)")})");
            parameters.Add("search", query.Search);
        }
        if (query.ChannelIds is { } ids)
        {
            where.Add(InListSql("id", "@ids"));
            parameters.Add("ids", ListParameter(ids));
        }
        var filter = where.Count == 0 ? "" : "WHERE " + string.Join(" AND ", where);

        // Counts are grouped over the page's channels; the newest run is one index seek per channel.
        var sql = $"""
            WITH page AS (
                SELECT * FROM channels {filter} ORDER BY created_at, id LIMIT @limit OFFSET @offset
            ),
            pending AS (
                SELECT channel_id, COUNT(*) AS messages FROM messages
                WHERE channel_id IN (SELECT id FROM page) AND run_id IS NULL AND role = 'user'
                GROUP BY channel_id
            ),
            active AS (
                SELECT channel_id, SUM(CASE WHEN status = 'queued' THEN 1 ELSE 0 END) AS queued, MAX(CASE WHEN status = 'running' THEN id END) AS running
                FROM runs WHERE status IN ('queued', 'running') AND channel_id IN (SELECT id FROM page)
                GROUP BY channel_id
            )
            SELECT page.id AS Id, page.name AS Name, page.dir_path AS DirPath, page.session_id AS SessionId,
                   page.created_at AS CreatedAt, page.updated_at AS UpdatedAt, page.platform AS Platform, page.external_id AS ExternalId,
                   page.mode AS Mode, page.model AS Model, page.progress AS Progress,
                   page.parent_id AS ParentId, page.fork_session_id AS ForkSessionId, page.fork_dir_path AS ForkDirPath,
                   page.fork_worktree AS ForkWorktree, page.worktree_repo AS WorktreeRepo, page.worktree_path AS WorktreePath,
                   page.worktree_branch AS WorktreeBranch, page.worktree_dir AS WorktreeDir,
                   COALESCE(pending.messages, 0) + COALESCE(active.queued, 0) AS Queued, active.running AS RunningRunId,
                   last.id AS LastRunId, last.status AS LastRunStatus, last.created_at AS LastRunCreatedAt, last.finished_at AS LastRunFinishedAt
            FROM page
            LEFT JOIN pending ON pending.channel_id = page.id
            LEFT JOIN active ON active.channel_id = page.id
            LEFT JOIN runs AS last ON last.id = (SELECT MAX(id) FROM runs WHERE channel_id = page.id)
            ORDER BY page.created_at, page.id
            """;
        return ReadAsync(async connection =>
        {
            // One read transaction: the total and the page come from the same snapshot.
            using var tx = BeginSnapshot(connection);
            var total = await connection.ExecuteScalarAsync<long>(Command(
                $"SELECT COUNT(*) FROM channels {filter}", parameters, tx, cancellationToken));
            var rows = await connection.QueryAsync<ChannelOverviewRow>(Command(sql, parameters, tx, cancellationToken));
            return new ChannelPage(rows.Select(r => r.ToOverview()).ToList(), checked((int)total));
        }, cancellationToken);
    }

    public Task<IReadOnlyList<Run>> ListActiveRunsAsync(string channelId, CancellationToken cancellationToken) =>
        ReadAsync(async connection =>
        {
            var rows = await connection.QueryAsync<RunRow>(Command(
                RunRow.Select + " WHERE status IN ('queued', 'running') AND channel_id = @channel_id ORDER BY id",
                new { channel_id = channelId }, null, cancellationToken));
            return (IReadOnlyList<Run>)rows.Select(r => r.ToRun()).ToList();
        }, cancellationToken);

    public Task<IReadOnlyList<RunTiming>> ListFinishedRunTimingsAsync(DateTimeOffset since, CancellationToken cancellationToken) =>
        ReadAsync(async connection =>
        {
            var rows = await connection.QueryAsync<RunTimingRow>(Command($"""
                SELECT id AS Id, status AS Status, started_at AS StartedAt, finished_at AS FinishedAt
                FROM runs WHERE finished_at >= @since AND {FinishedRuns}
                ORDER BY finished_at, id
                """, new { since = Columns.ToMs(since) }, null, cancellationToken));
            return (IReadOnlyList<RunTiming>)rows.Select(r => r.ToTiming()).ToList();
        }, cancellationToken);
}

internal sealed class ChannelOverviewRow : ChannelRow
{
    public long Queued { get; set; }
    public string? RunningRunId { get; set; }
    public string? LastRunId { get; set; }
    public string? LastRunStatus { get; set; }
    public long? LastRunCreatedAt { get; set; }
    public long? LastRunFinishedAt { get; set; }

    public ChannelOverview ToOverview()
    {
        var lastRun = LastRunId is null
            ? null
            : new RunSummary(LastRunId, RunStatusExtensions.FromWire(LastRunStatus!), Columns.FromMs(LastRunCreatedAt!.Value), Columns.FromMs(LastRunFinishedAt));
        return new ChannelOverview(ToChannel(), checked((int)Queued), RunningRunId, lastRun);
    }
}

internal sealed class RunTimingRow
{
    public string Id { get; set; } = "";
    public string Status { get; set; } = "";
    public long? StartedAt { get; set; }
    public long FinishedAt { get; set; }

    public RunTiming ToTiming() =>
        new(Id, RunStatusExtensions.FromWire(Status), Columns.FromMs(StartedAt), Columns.FromMs(FinishedAt));
}
