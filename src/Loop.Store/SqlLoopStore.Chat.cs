namespace Loop.Store;

using Dapper;
using Loop.Domain;
using Loop.Domain.Channels;

public abstract partial class SqlLoopStore
{
    public Task<(Channel Channel, bool Created)> EnsureExternalChannelAsync(string platform, string externalId, string name, CancellationToken cancellationToken)
    {
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
                INSERT INTO channels (id, name, dir_path, session_id, created_at, updated_at, platform, external_id)
                VALUES (@id, @name, NULL, NULL, @now, @now, @platform, @external_id)
                """, new { id, name, now, platform, external_id = externalId }, tx, cancellationToken));
            var row = await connection.QuerySingleAsync<ChannelRow>(Command(ChannelRow.Select + " WHERE id = @id", new { id }, tx, cancellationToken));
            return (row.ToChannel(), true);
        }, cancellationToken);
    }

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
}
