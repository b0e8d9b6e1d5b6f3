namespace Loop.Store;

using Dapper;
using Loop.Domain;
using Loop.Domain.Channels;

public abstract partial class SqlLoopStore
{
    public Task<Channel> EnsureTasksChannelAsync(CancellationToken cancellationToken)
    {
        var now = Now();
        return WriteAsync(async (connection, tx) =>
        {
            await connection.ExecuteAsync(Command("""
                INSERT INTO channels (id, name, dir_path, session_id, created_at, updated_at)
                VALUES (@id, 'tasks', NULL, NULL, @now, @now)
                ON CONFLICT (id) DO NOTHING
                """, new { id = Channel.TasksChannelId, now }, tx, cancellationToken));
            return (await connection.QuerySingleAsync<ChannelRow>(Command(
                ChannelRow.Select + " WHERE id = @id", new { id = Channel.TasksChannelId }, tx, cancellationToken))).ToChannel();
        }, cancellationToken);
    }

    public Task<ChannelWrite> UpdateChannelAsync(ChannelUpdate update, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(update);
        var dir = update.DirPath is null ? null : NormalizeDir(update.DirPath);
        return WriteAsync(async (connection, tx) =>
        {
            if (dir is not null && await connection.QuerySingleOrDefaultAsync<string?>(Command(
                "SELECT id FROM channels WHERE dir_path = @dir_path AND id <> @id",
                new { dir_path = dir, id = update.ChannelId }, tx, cancellationToken)) is not null)
            {
                return ChannelWrite.DirTaken;
            }
            var updated = await connection.ExecuteAsync(Command("""
                UPDATE channels SET
                    name = COALESCE(@name, name),
                    session_id = CASE WHEN (@dir_path IS NULL OR dir_path = @dir_path) AND (@mode IS NULL OR mode = @mode) THEN session_id ELSE NULL END,
                    dir_path = COALESCE(@dir_path, dir_path),
                    mode = COALESCE(@mode, mode),
                    model = CASE WHEN @model IS NULL THEN model WHEN @model = '' THEN NULL ELSE @model END,
                    progress = COALESCE(@progress, progress),
                    updated_at = @now
                WHERE id = @id
                """, new
            {
                id = update.ChannelId,
                name = update.Name,
                dir_path = dir,
                mode = update.Mode?.ToWire(),
                model = update.Model,
                progress = update.Progress?.ToWire(),
                now = Columns.ToMs(update.At),
            }, tx, cancellationToken));
            return updated == 1 ? ChannelWrite.Written : ChannelWrite.Missing;
        }, cancellationToken);
    }

    public Task<ChannelDeletion> DeleteChannelAsync(string channelId, CancellationToken cancellationToken) =>
        WriteAsync(async (connection, tx) =>
        {
            // The lock messages are stored under: none arrives between the checks and the deletes.
            await LockAsync(connection, tx, "channel:" + channelId, cancellationToken);
            var id = new { id = channelId };
            if (await connection.QuerySingleOrDefaultAsync<string?>(Command("SELECT id FROM channels WHERE id = @id", id, tx, cancellationToken)) is null)
            {
                return ChannelDeletion.Missing;
            }
            var busy = await connection.QueryFirstOrDefaultAsync<string?>(Command("""
                SELECT 'run ' || id || ' is ' || status FROM runs WHERE channel_id = @id AND status IN ('queued', 'running')
                UNION ALL
                SELECT 'a message waits for a run' FROM messages WHERE channel_id = @id AND run_id IS NULL AND role = 'user'
                UNION ALL
                SELECT 'loop task ' || id || ' is running' FROM tasks WHERE channel_id = @id AND loop_state = 'running'
                """, id, tx, cancellationToken));
            if (busy is not null)
            {
                return new ChannelDeletion(false, [], busy);
            }
            var tasks = (await connection.QueryAsync<string>(Command("SELECT id FROM tasks WHERE channel_id = @id", id, tx, cancellationToken))).ToList();
            foreach (var statement in new[]
            {
                "DELETE FROM messages WHERE channel_id = @id",
                "DELETE FROM runs WHERE channel_id = @id",
                "DELETE FROM budgets WHERE scope = 'task' AND scope_id IN (SELECT id FROM tasks WHERE channel_id = @id)",
                "DELETE FROM budgets WHERE scope = 'channel' AND scope_id = @id",
                "DELETE FROM tasks WHERE channel_id = @id",
                "DELETE FROM api_tokens WHERE channel_id = @id",
                "DELETE FROM channels WHERE id = @id",
            })
            {
                await connection.ExecuteAsync(Command(statement, id, tx, cancellationToken));
            }
            return new ChannelDeletion(true, tasks, null);
        }, cancellationToken);
}
