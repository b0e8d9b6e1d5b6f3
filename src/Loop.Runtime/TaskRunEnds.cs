namespace Loop.Runtime;

using Loop.Domain.Runs;
using Loop.Grains;
using Microsoft.Extensions.Logging;

/// <summary>Tells a task's grain that one of its runs ended, so it decides what comes next (a loop
/// task's next iteration); a failure to tell is logged and shown in the feed.</summary>
public sealed class TaskRunEnds(IGrainFactory grains, ILoopEvents events, TimeProvider time, ILogger<TaskRunEnds> logger)
{
    public void Tell(Run run)
    {
        if (run.TaskId is not { } taskId)
        {
            return;
        }
        grains.GetGrain<ITaskGrain>(taskId).RunFinished(run.Id).ContinueWith(told =>
        {
            logger.LogError(told.Exception, "Task {TaskId} could not continue after run {RunId}", taskId, run.Id);
            events.Publish(new LoopEvent("task.error", time.GetUtcNow(), run.ChannelId, run.Id, $"task {taskId} could not continue: {told.Exception!.GetBaseException().Message}"));
        }, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
    }
}
