namespace Loop.Store;

using Dapper;
using Loop.Domain;
using Loop.Domain.Channels;
using Loop.Domain.Runs;

public abstract partial class SqlLoopStore
{
    public Task<(Channel Channel, bool Created)> EnsureExternalChannelAsync(string platform, string externalId, string name, ChannelAgent agent, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(agent);
        var id = Ids.New("ch", _time);
        var now = Now();
        return WriteAsync(async (connection, tx) =>
        {
            var existing = await connection.QuerySingleOrDefaultAsync<ChannelRow>(Command(
                ChannelRow.Select + " WHERE platform = @platform AND external_id = @external_id",
                new { platform, external_id = externalId }, tx, cancellationToken));
            if (existing is not null)
            {
                return (existing.ToChannel(), false);
            }
            await connection.ExecuteAsync(Command("""
                INSERT INTO channels (id, name, dir_path, session_id, created_at, updated_at, platform, external_id, mode, model, progress)
                VALUES (@id, @name, NULL, NULL, @now, @now, @platform, @external_id, @mode, @model, @progress)
                """, new { id, name, now, platform, external_id = externalId, mode = agent.Mode.ToWire(), model = agent.Model, progress = agent.Progress.ToWire() }, tx, cancellationToken));
            var row = await connection.QuerySingleAsync<ChannelRow>(Command(ChannelRow.Select + " WHERE id = @id", new { id }, tx, cancellationToken));
            return (row.ToChannel(), true);
        }, cancellationToken);
    }

    public Task<(Channel Channel, bool Created)?> ForkChannelAsync(string parentId, string name, string? platform, string? externalId, bool worktree,
        CancellationToken cancellationToken)
    {
        var id = Ids.New("ch", _time);
        var now = Now();
        return WriteAsync<(Channel, bool)?>(async (connection, tx) =>
        {
            if (externalId is not null && await connection.QuerySingleOrDefaultAsync<ChannelRow>(Command(
                    ChannelRow.Select + " WHERE platform = @platform AND external_id = @external_id",
                    new { platform, external_id = externalId }, tx, cancellationToken)) is { } existing)
            {
                return (existing.ToChannel(), false);
            }
            // Read and copied in one statement: the session is the parent's at this instant.
            var inserted = await connection.ExecuteAsync(Command("""
                INSERT INTO channels (id, name, dir_path, session_id, created_at, updated_at, platform, external_id, mode, model, progress,
                                      parent_id, fork_session_id, fork_dir_path, fork_worktree)
                SELECT @id, @name, NULL, NULL, @now, @now, @platform, @external_id, mode, model, progress,
                       id, session_id, COALESCE(dir_path, worktree_dir, fork_dir_path), @worktree
                FROM channels WHERE id = @parent_id
                """, new { id, name, now, platform, external_id = externalId, parent_id = parentId, worktree = worktree ? 1 : 0 }, tx, cancellationToken));
            if (inserted == 0)
            {
                return null;
            }
            var row = await connection.QuerySingleAsync<ChannelRow>(Command(ChannelRow.Select + " WHERE id = @id", new { id }, tx, cancellationToken));
            return (row.ToChannel(), true);
        }, cancellationToken);
    }

    public Task SetChannelWorktreeAsync(string channelId, ForkWorktree? worktree, CancellationToken cancellationToken) =>
        WriteAsync((connection, tx) => connection.ExecuteAsync(Command("""
            UPDATE channels SET worktree_repo = @repo, worktree_path = @path, worktree_branch = @branch, worktree_dir = @dir, updated_at = @now
            WHERE id = @id
            """, new { id = channelId, repo = worktree?.Repo, path = worktree?.Path, branch = worktree?.Branch, dir = worktree?.WorkDir, now = Now() }, tx, cancellationToken)),
            cancellationToken);

    public Task<Channel?> FindChannelByExternalAsync(string platform, string externalId, CancellationToken cancellationToken) =>
        ReadAsync(async connection => (await connection.QuerySingleOrDefaultAsync<ChannelRow>(Command(
            ChannelRow.Select + " WHERE platform = @platform AND external_id = @external_id",
            new { platform, external_id = externalId }, null, cancellationToken)))?.ToChannel(), cancellationToken);

    public Task<bool> BindChannelAsync(string channelId, string platform, string externalId, CancellationToken cancellationToken) =>
        WriteAsync(async (connection, tx) =>
        {
            var owner = await connection.QuerySingleOrDefaultAsync<string>(Command(
                "SELECT id FROM channels WHERE platform = @platform AND external_id = @external_id",
                new { platform, external_id = externalId }, tx, cancellationToken));
            if (owner is not null)
            {
                return owner == channelId;
            }
            return await connection.ExecuteAsync(Command(
                "UPDATE channels SET platform = @platform, external_id = @external_id, updated_at = @now WHERE id = @id",
                new { id = channelId, platform, external_id = externalId, now = Now() }, tx, cancellationToken)) == 1;
        }, cancellationToken);

    public Task<int> NameChatChannelsAsync(string platform, IReadOnlyDictionary<string, string> names, CancellationToken cancellationToken)
    {
        var now = Now();
        return WriteAsync((connection, tx) => connection.ExecuteAsync(Command("""
            UPDATE channels SET name = @name, updated_at = @now
            WHERE platform = @platform AND external_id = @external_id AND dir_path IS NULL AND name <> @name
            """, names.Select(n => new { platform, external_id = n.Key, name = n.Value, now }).ToList(), tx, cancellationToken)), cancellationToken);
    }

    public Task<IReadOnlyList<ChatMessage>> ListRunMessagesAsync(string runId, CancellationToken cancellationToken) =>
        ReadAsync(async connection => (IReadOnlyList<ChatMessage>)(await connection.QueryAsync<MessageRow>(Command(
            MessageRow.Select + " WHERE run_id = @run_id ORDER BY id", new { run_id = runId }, null, cancellationToken)))
            .Select(r => r.ToMessage()).ToList(), cancellationToken);

    public Task<bool> IsReplyPostedAsync(string runId, CancellationToken cancellationToken) =>
        ReadAsync(async connection => await connection.ExecuteScalarAsync<long?>(Command(
            "SELECT reply_posted_at FROM runs WHERE id = @id", new { id = runId }, null, cancellationToken)) is not null, cancellationToken);

    public Task MarkReplyPostedAsync(string runId, DateTimeOffset at, CancellationToken cancellationToken) =>
        WriteAsync((connection, tx) => connection.ExecuteAsync(Command(
            "UPDATE runs SET reply_posted_at = @at WHERE id = @id AND reply_posted_at IS NULL",
            new { id = runId, at = Columns.ToMs(at) }, tx, cancellationToken)), cancellationToken);

    public Task<IReadOnlyList<UnpostedReply>> ListUnpostedRepliesAsync(DateTimeOffset since, CancellationToken cancellationToken) =>
        ReadAsync(async connection => (IReadOnlyList<UnpostedReply>)(await connection.QueryAsync<(string Id, string? Node)>(Command("""
            SELECT id, node FROM runs
            WHERE reply_posted_at IS NULL AND finished_at >= @since AND status NOT IN ('queued', 'running')
              AND channel_id IN (SELECT c.id FROM channels c JOIN connectors k ON k.id = c.platform WHERE c.external_id IS NOT NULL)
            ORDER BY id
            """, new { since = Columns.ToMs(since) }, null, cancellationToken)))
            .Select(r => new UnpostedReply(r.Id, r.Node)).ToList(), cancellationToken);

    public Task<Run?> AdoptUnpostedReplyAsync(string runId, string? node, CancellationToken cancellationToken) =>
        WriteAsync(async (connection, tx) =>
        {
            var adopted = await connection.ExecuteAsync(Command("""
                UPDATE runs SET node = @adopter
                WHERE id = @id AND reply_posted_at IS NULL AND (node = @node OR (node IS NULL AND @node IS NULL))
                """, new { id = runId, node, adopter = Node }, tx, cancellationToken));
            return adopted == 0 ? null
                : (await connection.QuerySingleAsync<RunRow>(Command(RunRow.Select + " WHERE id = @id", new { id = runId }, tx, cancellationToken))).ToRun();
        }, cancellationToken);

    public Task<bool> RecordRefusalAsync(string connectorId, string sender, DateTimeOffset now, DateTimeOffset toldBefore, CancellationToken cancellationToken) =>
        WriteAsync(async (connection, tx) => await connection.ExecuteAsync(Command("""
            INSERT INTO chat_refusals (connector_id, sender, refused_at) VALUES (@connectorId, @sender, @now)
            ON CONFLICT (connector_id, sender) DO UPDATE SET refused_at = excluded.refused_at
            WHERE chat_refusals.refused_at < @toldBefore
            """, new { connectorId, sender, now = Columns.ToMs(now), toldBefore = Columns.ToMs(toldBefore) }, tx, cancellationToken)) == 1, cancellationToken);
}
