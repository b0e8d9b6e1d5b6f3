namespace Loop.Runtime;

using Loop.Domain.Channels;
using Loop.Domain.Connectors;
using Loop.Domain.Runs;
using Microsoft.Extensions.Logging;

/// <summary>A run of a chat bound to a connector was queued, started, wrote a line of output or ended: what its adapter shows there.</summary>
/// <param name="Chat">The platform's id of the chat (the channel's external id).</param>
/// <param name="Text">The event's text: for an ended run, what to say when the run stored no reply; for output, the line.</param>
public sealed record ChatRunEvent(string Kind, Run Run, Channel Channel, string Chat, string Text)
{
    /// <summary>Published by a node that took over the reply of a run another node ended without posting it.</summary>
    public const string ReplyRecovered = "chat.reply_recovered";

    public const string Output = "run.output";

    public bool Ended => Kind is "run.finished" or "run.error";

    /// <summary>A line of the run's output (only for a feed started with output).</summary>
    public bool IsOutput => Kind == Output;

    /// <summary>Whether an event of this kind is one for the chat.</summary>
    public static bool Concerns(string kind) => kind is "run.queued" or "run.started" or "run.finished" or "run.error" or ReplyRecovered;

    /// <summary>A recovered reply comes to the chat as the run's end.</summary>
    public static ChatRunEvent From(LoopEvent loopEvent, Run run, Channel channel, string chat) => loopEvent.Kind == ReplyRecovered
        ? new ChatRunEvent(run.Status == RunStatus.Succeeded ? "run.finished" : "run.error", run, channel, chat, run.Error ?? run.Reply ?? "")
        : new ChatRunEvent(loopEvent.Kind, run, channel, chat, loopEvent.Text);
}

/// <summary>
/// Follows this node's run events for the chats of one connector and hands them to its adapter one at
/// a time, in the order they happened (replies come from the node that ran the agent). A handler that
/// fails is logged and reported, and the next event still comes. Started with output, it also hands on
/// the output lines of the runs it saw start (the agent runs on the node of its channel, which is this one).
/// </summary>
public sealed class ConnectorRunFeed : IAsyncDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _pump;

    private readonly bool _withOutput;

    // Runs of this connector's chats that started and have not ended, for their output lines: looked up
    // once per run, not once per line.
    private readonly Dictionary<string, ChatRunEvent> _running = new(StringComparer.Ordinal);

    private ConnectorRunFeed(ILoopEvents events, ChannelService channels, Connector connector, Func<ChatRunEvent, CancellationToken, Task> handle,
        TimeProvider time, ILogger logger, bool withOutput)
    {
        _withOutput = withOutput;
        // Subscribed before the constructor returns (by the first MoveNextAsync), so no event after is missed.
        var subscription = events.SubscribeAsync(_stop.Token).GetAsyncEnumerator(_stop.Token);
        var first = subscription.MoveNextAsync();
        _pump = Task.Run(() => PumpAsync(subscription, first, events, channels, connector, handle, time, logger));
    }

    public static ConnectorRunFeed Start(ILoopEvents events, ChannelService channels, Connector connector, Func<ChatRunEvent, CancellationToken, Task> handle,
        TimeProvider time, ILogger logger, bool withOutput = false) => new(events, channels, connector, handle, time, logger, withOutput);

    private async Task PumpAsync(IAsyncEnumerator<LoopEvent> subscription, ValueTask<bool> first, ILoopEvents events, ChannelService channels,
        Connector connector, Func<ChatRunEvent, CancellationToken, Task> handle, TimeProvider time, ILogger logger)
    {
        try
        {
            var more = await first;
            while (more)
            {
                if (_withOutput && subscription.Current is { Kind: ChatRunEvent.Output, RunId: { } runId } output
                    && _running.TryGetValue(runId, out var started))
                {
                    await HandleAsync(started with { Kind = ChatRunEvent.Output, Text = output.Text }, handle, events, time, logger, connector);
                }
                else if (subscription.Current is { RunId: not null, Data: Run run } loopEvent && ChatRunEvent.Concerns(loopEvent.Kind))
                {
                    try
                    {
                        var channel = await channels.GetChannelAsync(Caller.User, run.ChannelId, _stop.Token);
                        if (channel.Platform == connector.Id && channel.ExternalId is { } chat)
                        {
                            var chatEvent = ChatRunEvent.From(loopEvent, run, channel, chat);
                            if (_withOutput && chatEvent.Kind == "run.started")
                            {
                                _running[run.Id] = chatEvent;
                            }
                            else if (chatEvent.Ended)
                            {
                                _running.Remove(run.Id);
                            }
                            await handle(chatEvent, _stop.Token);
                        }
                    }
                    catch (Exception error) when (error is not OperationCanceledException)
                    {
                        logger.LogError(error, "Handling {Event} of run {RunId} for connector {Connector} failed", loopEvent.Kind, run.Id, connector.Id);
                        events.Publish(new LoopEvent("chat.error", time.GetUtcNow(), run.ChannelId, run.Id, $"{connector.Name}: {error.Message}"));
                    }
                }
                more = await subscription.MoveNextAsync();
            }
        }
        catch (OperationCanceledException)
        {
        }
        finally
        {
            await subscription.DisposeAsync();
        }
    }

    private async Task HandleAsync(ChatRunEvent chatEvent, Func<ChatRunEvent, CancellationToken, Task> handle, ILoopEvents events, TimeProvider time,
        ILogger logger, Connector connector)
    {
        try
        {
            await handle(chatEvent, _stop.Token);
        }
        catch (Exception error) when (error is not OperationCanceledException)
        {
            logger.LogError(error, "Handling output of run {RunId} for connector {Connector} failed", chatEvent.Run.Id, connector.Id);
            events.Publish(new LoopEvent("chat.error", time.GetUtcNow(), chatEvent.Run.ChannelId, chatEvent.Run.Id, $"{connector.Name}: {error.Message}"));
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        try
        {
            await _pump.WaitAsync(TimeSpan.FromSeconds(5));
        }
        catch (Exception)
        {
            // Stopping: what failed was logged where it happened.
        }
        _stop.Dispose();
    }
}
