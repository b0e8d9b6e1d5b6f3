namespace Loop.Store;

using System.Data;
using System.Data.Common;
using Dapper;
using Loop.Domain;
using Loop.Domain.Runs;
using Loop.Domain.Tasks;

public abstract partial class SqlLoopStore
{
    public Task<bool> TryStartRunAsync(string runId, DateTimeOffset startedAt, CancellationToken cancellationToken) =>
        WriteAsync(async (connection, tx) => await connection.ExecuteAsync(Command(
            "UPDATE runs SET status = 'running', started_at = @started_at, node = @node WHERE id = @id AND status = 'queued'",
            new { id = runId, started_at = Columns.ToMs(startedAt), node = Node }, tx, cancellationToken)) == 1, cancellationToken);

    public Task<bool> CancelQueuedRunAsync(string runId, DateTimeOffset now, CancellationToken cancellationToken) =>
        WriteAsync(async (connection, tx) => await connection.ExecuteAsync(Command(
            "UPDATE runs SET status = 'cancelled', finished_at = @now, error = 'cancelled before it started' WHERE id = @id AND status = 'queued'",
            new { id = runId, now = Columns.ToMs(now) }, tx, cancellationToken)) == 1, cancellationToken);

    // Spelled like ix_runs_queued_task's WHERE.
    // Oldest first by the instant each run is queued for; one claimed ahead of its slot waits for it.
    private const string NextQueuedTaskRunSql =
        RunRow.Select + " WHERE channel_id = @channel_id AND status = 'queued' AND task_id IS NOT NULL AND created_at <= @now ORDER BY created_at, id LIMIT 1";

    public Task<IReadOnlyList<QueuedTaskRuns>> ListQueuedTaskRunsAsync(CancellationToken cancellationToken) =>
        ReadAsync(async connection => (IReadOnlyList<QueuedTaskRuns>)(await connection.QueryAsync<(string ChannelId, long CreatedAt)>(Command(
            "SELECT DISTINCT channel_id, created_at FROM runs WHERE status = 'queued' AND task_id IS NOT NULL",
            null, null, cancellationToken))).Select(r => new QueuedTaskRuns(r.ChannelId, Columns.FromMs(r.CreatedAt))).ToList(), cancellationToken);

    public Task<IReadOnlyList<Run>> ListRunsClaimedAheadAsync(string taskId, DateTimeOffset now, CancellationToken cancellationToken) =>
        ReadAsync(async connection => (IReadOnlyList<Run>)(await connection.QueryAsync<RunRow>(Command(
            RunRow.Select + " WHERE task_id = @task_id AND status = 'queued' AND created_at > @now ORDER BY created_at",
            new { task_id = taskId, now = Columns.ToMs(now) }, null, cancellationToken))).Select(r => r.ToRun()).ToList(), cancellationToken);

    public Task<(ScheduledTask Task, bool Created)> CreateTaskAsync(ScheduledTask task, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(task);
        return WriteAsync(async (connection, tx) =>
        {
            if (task.Template is not null)
            {
                var existing = await connection.QueryFirstOrDefaultAsync<TaskRow>(Command(
                    TaskRow.Select + " WHERE channel_id = @channel_id AND template = @template",
                    new { channel_id = task.ChannelId, template = task.Template }, tx, cancellationToken));
                if (existing is not null)
                {
                    return (existing.ToTask(), false);
                }
            }
            try
            {
                await connection.ExecuteAsync(Command(TaskRow.Insert, TaskRow.Parameters(task), tx, cancellationToken));
            }
            catch (DbException e) when (IsForeignKeyViolation(e))
            {
                throw new KeyNotFoundException($"There is no channel {task.ChannelId}.", e);
            }
            return (AsStored(task), true);
        }, cancellationToken);
    }

    public Task<ScheduledTask?> GetTaskAsync(string taskId, CancellationToken cancellationToken) =>
        ReadAsync(async connection => (await connection.QuerySingleOrDefaultAsync<TaskRow>(Command(
            TaskRow.Select + " WHERE id = @id", new { id = taskId }, null, cancellationToken)))?.ToTask(), cancellationToken);

    public Task<IReadOnlyList<ScheduledTask>> GetTasksAsync(IReadOnlyCollection<string> taskIds, CancellationToken cancellationToken) =>
        ReadAsync(async connection =>
        {
            var tasks = (await connection.QueryAsync<TaskRow>(Command(
                TaskRow.Select + " WHERE " + InListSql("id", "@ids"), new { ids = ListParameter(taskIds) }, null, cancellationToken)))
                .Select(r => r.ToTask()).ToList();
            return (IReadOnlyList<ScheduledTask>)tasks;
        }, cancellationToken);

    public Task<IReadOnlyList<TaskSlot>> ListTaskSlotsAsync(CancellationToken cancellationToken) =>
        ReadAsync(async connection => (IReadOnlyList<TaskSlot>)(await connection.QueryAsync<(string Id, long NextRunAt, long Revision)>(Command(
            "SELECT id, next_run_at, revision FROM tasks WHERE enabled = 1 AND type <> 'loop' AND next_run_at IS NOT NULL",
            null, null, cancellationToken))).Select(r => new TaskSlot(r.Id, Columns.FromMs(r.NextRunAt), r.Revision)).ToList(), cancellationToken);

    public Task<IReadOnlyList<string>> ListRunningLoopTasksAsync(CancellationToken cancellationToken) =>
        ReadAsync(async connection => (IReadOnlyList<string>)(await connection.QueryAsync<string>(Command(
            "SELECT id FROM tasks WHERE enabled = 1 AND type = 'loop' AND loop_state = 'running' ORDER BY id",
            null, null, cancellationToken))).ToList(), cancellationToken);

    public Task<IReadOnlyList<ScheduledTask>> ListTasksAsync(string? channelId, CancellationToken cancellationToken)
    {
        var sql = channelId is null
            ? TaskRow.Select + " ORDER BY id"
            : TaskRow.Select + " WHERE channel_id = @channel_id ORDER BY id";
        return ReadAsync(async connection => (IReadOnlyList<ScheduledTask>)(await connection.QueryAsync<TaskRow>(Command(
            sql, new { channel_id = channelId }, null, cancellationToken))).Select(r => r.ToTask()).ToList(), cancellationToken);
    }

    public Task<TaskWrite> UpdateTaskAsync(ScheduledTask task, CancellationToken cancellationToken) =>
        UpdateTaskAsync(task, [], cancellationToken);

    public Task<TaskWrite> UpdateTaskAsync(ScheduledTask task, IReadOnlyCollection<string> withdrawnRuns, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(task);
        ArgumentNullException.ThrowIfNull(withdrawnRuns);
        var parameters = new { ids = ListParameter(withdrawnRuns), task_id = task.Id };
        return WriteOrRollBackAsync(async (connection, tx) =>
        {
            // Deleted first, so each row stays locked until the task is written: a run that started
            // (or went) meanwhile is no longer the task's to give back, and nothing is written.
            if (withdrawnRuns.Count > 0 && await connection.ExecuteAsync(Command(
                $"DELETE FROM runs WHERE {InListSql("id", "@ids")} AND task_id = @task_id AND status = 'queued'",
                parameters, tx, cancellationToken)) != withdrawnRuns.Count)
            {
                throw new RollBack<TaskWrite>(TaskWrite.Stale);
            }
            var written = await WriteTaskAsync(connection, tx, task, cancellationToken);
            return written == TaskWrite.Written || withdrawnRuns.Count == 0 ? written : throw new RollBack<TaskWrite>(written);
        }, cancellationToken);
    }

    private static async Task<TaskWrite> WriteTaskAsync(DbConnection connection, DbTransaction tx, ScheduledTask task, CancellationToken cancellationToken)
    {
        if (await connection.ExecuteAsync(Command(TaskRow.Update, TaskRow.Parameters(task), tx, cancellationToken)) == 1)
        {
            return TaskWrite.Written;
        }
        return await connection.ExecuteScalarAsync<long>(Command("SELECT count(*) FROM tasks WHERE id = @id", new { id = task.Id }, tx, cancellationToken)) == 0
            ? TaskWrite.Missing
            : TaskWrite.Stale;
    }

    public Task<bool> DeleteTaskAsync(string taskId, CancellationToken cancellationToken) =>
        WriteAsync(async (connection, tx) =>
        {
            await connection.ExecuteAsync(Command("DELETE FROM budgets WHERE scope = 'task' AND scope_id = @id", new { id = taskId }, tx, cancellationToken));
            return await connection.ExecuteAsync(Command("DELETE FROM tasks WHERE id = @id", new { id = taskId }, tx, cancellationToken)) == 1;
        }, cancellationToken);

    public Task SetTaskSessionAsync(string taskId, string? sessionId, CancellationToken cancellationToken) =>
        WriteAsync(async (connection, tx) =>
        {
            await SaveSessionAsync(connection, tx, SessionHolder.Task, taskId, sessionId, cancellationToken);
            return 0;
        }, cancellationToken);

    public Task<IReadOnlyList<TaskFiring>> ClaimTaskFiringsAsync(IReadOnlyList<TaskFiring> firings, DateTimeOffset now, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(firings);
        return WriteAsync((connection, tx) =>
        {
            // One statement of each kind, prepared once and rebound per slot: preparing them
            // again for every slot (a command per row) cost three times the work itself.
            using var claim = connection.CreateCommand();
            claim.Transaction = tx;
            // The conditional update is the claim: of any number of claimers for one slot,
            // exactly one sees the task as it read it and moves it on.
            claim.CommandText = """
                UPDATE tasks SET next_run_at = @next_run_at, last_run_at = @now, updated_at = @now, revision = revision + 1
                WHERE id = @id AND revision = @revision AND enabled = 1 AND next_run_at = @due_at
                """;
            var id = AddParameter(claim, "id", DbType.String);
            var revision = AddParameter(claim, "revision", DbType.Int64);
            var dueAt = AddParameter(claim, "due_at", DbType.Int64);
            var nextRunAt = AddParameter(claim, "next_run_at", DbType.Int64);
            AddParameter(claim, "now", DbType.Int64).Value = Columns.ToMs(now);
            using var insert = RunRow.InsertCommand(connection, tx);
            var claimed = new List<TaskFiring>();
            // In id order: claimers on other nodes lock the same rows in the same order, never in a cycle.
            foreach (var firing in firings.OrderBy(f => f.TaskId, StringComparer.Ordinal))
            {
                cancellationToken.ThrowIfCancellationRequested();
                id.Value = firing.TaskId;
                revision.Value = firing.Revision;
                dueAt.Value = Columns.ToMs(firing.DueAt);
                nextRunAt.Value = Columns.ToMs(firing.NextRunAt) is { } next ? next : DBNull.Value;
                if (claim.ExecuteNonQuery() != 1)
                {
                    continue;
                }
                if (firing.Run is { } run)
                {
                    RunRow.Bind(insert, run);
                    insert.ExecuteNonQuery();
                }
                claimed.Add(firing);
            }
            return Task.FromResult<IReadOnlyList<TaskFiring>>(claimed);
        }, cancellationToken);
    }

    public Task<TaskWrite> QueueTaskRunAsync(Run run, ScheduledTask task, CancellationToken cancellationToken) =>
        WriteAsync(async (connection, tx) =>
        {
            var written = await WriteTaskAsync(connection, tx, task, cancellationToken);
            if (written == TaskWrite.Written)
            {
                await connection.ExecuteAsync(Command(RunRow.Insert, RunRow.Parameters(run), tx, cancellationToken));
            }
            return written;
        }, cancellationToken);

    private static ScheduledTask AsStored(ScheduledTask task) => task with
    {
        NextRunAt = Columns.Truncate(task.NextRunAt),
        LastRunAt = Columns.Truncate(task.LastRunAt),
        CreatedAt = Columns.Truncate(task.CreatedAt),
        UpdatedAt = Columns.Truncate(task.UpdatedAt),
    };

    private static DbParameter AddParameter(DbCommand command, string name, DbType type)
    {
        var parameter = command.CreateParameter();
        parameter.ParameterName = name;
        parameter.DbType = type;
        command.Parameters.Add(parameter);
        return parameter;
    }
}
