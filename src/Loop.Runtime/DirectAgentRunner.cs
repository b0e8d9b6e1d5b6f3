namespace Loop.Runtime;

using System.Text;
using System.Text.Json;
using Anthropic;
using Anthropic.Core;
using Anthropic.Exceptions;
using Anthropic.Models.Messages;
using Loop.Config;
using Loop.Domain;
using Loop.Domain.Agents;
using Loop.Domain.Channels;
using Loop.Domain.Runs;
using Microsoft.Extensions.Logging;

/// <summary>
/// Runs the agent of a channel in direct mode: one streamed call of the Anthropic Messages API from
/// the daemon, through the Anthropic SDK, with the channel's stored conversation. No container, no
/// tools, no files. What the API streams reaches the observer as the lines Claude Code writes
/// (stream-json with partial messages: <c>stream_event</c>, then <c>assistant</c> and <c>result</c>), so
/// the dashboard streams the reply and the live feed shows it as it does a container run's.
/// </summary>
/// <remarks>The API key goes to the SDK alone, which sends it in a request header: it is never
/// logged, stored, or written into the run's output.</remarks>
public sealed class DirectAgentRunner(LoopConfig config, ILoopStore store, TimeProvider time, ILogger<DirectAgentRunner> logger) : IAgentRunner, IDisposable
{
    public const string NoKey = "direct mode calls the Anthropic API and needs an API key: set anthropic_api_key in config.json "
        + "(or ANTHROPIC_API_KEY in the environment of loop serve) and restart loop serve";

    // Read back a page at a time, newest first, until the window is full.
    private const int HistoryPage = 200;

    private readonly PriceTable _prices = new(config.ModelPrices);
    private readonly Lazy<AnthropicClient> _client = new(() => NewClient(config));

    public async Task<AgentRunResult> RunAsync(AgentRunRequest request, IAgentRunObserver observer, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        if (string.IsNullOrEmpty(config.AnthropicApiKey))
        {
            return Failed(NoKey);
        }
        var started = time.GetTimestamp();
        string model;
        Channel? channel;
        EffectiveSettings settings;
        try
        {
            channel = await store.GetChannelAsync(request.ChannelId, cancellationToken);
            // The project's claude_model and system prompt files over the global ones, as a container run has them.
            settings = EffectiveSettings.For(config, request.WorkDir);
            model = request.Model ?? settings.ClaudeModel ?? DirectConversation.DefaultModel;
        }
        catch (ConfigException invalid)
        {
            return Failed(invalid.Message);
        }
        if (channel is null)
        {
            return Failed($"channel {request.ChannelId} does not exist any more");
        }

        var system = SystemPrompt(channel, settings.SystemPrompt);
        var budget = DirectConversation.BudgetFor(system);
        var (earlier, start) = await EarlierMessagesAsync(request, budget, cancellationToken);
        var turns = DirectConversation.Build(earlier, request.Prompt, budget);
        // A new conversation (no session, or one just reset) starts at this run's first message.
        var session = request.Standalone ? null : request.SessionId ?? DirectSession.Since(start);
        logger.LogDebug("Run {RunId}: {Model} through the Anthropic API, {Turns} turn(s)", request.RunId, model, turns.Count);

        var call = new CallState(model, session);
        observer.OutputLine(call.InitLine());
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(config.ContainerTimeoutSec), time);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeout.Token);
        string? error = null;
        var outcome = AgentOutcome.Succeeded;
        try
        {
            await foreach (var streamed in _client.Value.Messages.CreateStreaming(Parameters(model, system, turns), stop.Token))
            {
                observer.OutputLine(call.Read(streamed));
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            (outcome, error) = (AgentOutcome.Cancelled, "cancelled");
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested)
        {
            (outcome, error) = (AgentOutcome.TimedOut, $"stopped after {config.ContainerTimeoutSec} s (container_timeout_sec)");
        }
        catch (Exception problem) when (Explain(problem) is { } reason)
        {
            (outcome, error) = (AgentOutcome.Failed, reason);
        }

        var usage = call.Usage(_prices, time.GetElapsedTime(started));
        var reply = call.Text.Length > 0 ? call.Text.ToString() : null;
        if (outcome == AgentOutcome.Succeeded && reply is null)
        {
            (outcome, error) = (AgentOutcome.Failed, $"the Anthropic API ended the reply without text (stop reason {call.StopReason ?? "none"})");
        }
        observer.OutputLine(call.AssistantLine());
        observer.OutputLine(call.ResultLine(outcome, reply ?? error, usage));
        return new AgentRunResult(outcome, null, reply, session, error, usage, Model: call.Model);
    }

    /// <summary>The channel's conversation before this run, oldest first, as far back as the window
    /// can hold; and the id where a new conversation would start.</summary>
    private async Task<(IReadOnlyList<ChatMessage> Earlier, long Start)> EarlierMessagesAsync(AgentRunRequest request, int budget, CancellationToken cancellationToken)
    {
        var own = await store.ListRunMessagesAsync(request.RunId, cancellationToken);
        long? firstOwn = own.Where(m => m.Role == MessageRole.User).Select(m => (long?)m.Id).Min();
        var since = DirectSession.Start(request.SessionId);
        if (request.Standalone || since is null)
        {
            // A task run has no messages of its own: its conversation starts after what is stored now.
            var start = firstOwn ?? ((await store.ListLatestMessagesAsync(request.ChannelId, null, 1, cancellationToken)).LastOrDefault()?.Id + 1 ?? 0);
            return ([], start);
        }

        var earlier = new List<ChatMessage>();
        var tokens = 0;
        var before = firstOwn;
        while (tokens <= budget)
        {
            var page = await store.ListLatestMessagesAsync(request.ChannelId, before, HistoryPage, cancellationToken);
            // Leave out this run's own messages and those still waiting for the next run.
            var said = page.Where(m => m.Id >= since && m.RunId is not null && m.RunId != request.RunId).ToList();
            earlier.InsertRange(0, said);
            tokens += said.Sum(m => DirectConversation.EstimateTokens(m.Content));
            if (page.Count < HistoryPage || page[0].Id <= since)
            {
                break;
            }
            before = page[0].Id;
        }
        return (earlier, firstOwn ?? 0);
    }

    /// <summary>Loop's words about the chat, then the configured system prompt files' (as Claude Code
    /// appends them to its own with --append-system-prompt).</summary>
    private static string SystemPrompt(Channel channel, string? configured) =>
        $"You are Claude, the assistant of the chat channel \"{channel.Name}\" in Loop. This chat has no tools: you cannot read or "
        + "change files, run commands or schedule tasks, so answer from the conversation alone. Each message of a person begins with their name."
        + (configured is null ? "" : "\n\n" + configured);

    private static MessageCreateParams Parameters(string model, string system, IReadOnlyList<ConversationTurn> turns) => new()
    {
        Model = model,
        MaxTokens = DirectConversation.ReplyTokens,
        System = system,
        Messages = turns
            .Select(t => t.Role == TurnRole.User ? (MessageParam)new UserMessageParam(t.Text) : new AssistantMessageParam(t.Text))
            .ToList(),
    };

    /// <summary>What went wrong, in words for the channel; null for what is not the API's doing.</summary>
    private string? Explain(Exception problem) => problem switch
    {
        AnthropicApiException refused => $"the Anthropic API refused the call with {(int)refused.StatusCode}"
            + (refused.Type?.Raw() is { } type ? $" {type}" : "")
            + (string.IsNullOrWhiteSpace(refused.ApiMessage) ? "" : $": {refused.ApiMessage}")
            + ((int)refused.StatusCode == 401 ? " (check anthropic_api_key)" : "")
            + (string.IsNullOrEmpty(refused.RequestID) ? "" : $" (request {refused.RequestID})"),
        AnthropicSseException broken => "the Anthropic API broke off the reply"
            + (broken.Type?.Raw() is { } type ? $" with {type}" : "")
            + (string.IsNullOrWhiteSpace(broken.ApiMessage) ? "" : $": {broken.ApiMessage}"),
        HttpRequestException unreachable => $"could not reach the Anthropic API at {config.AnthropicBaseUrl ?? "https://api.anthropic.com"}: {unreachable.Message}",
        // The SDK's own per-attempt timeout, after its retries.
        OperationCanceledException => "the Anthropic API did not answer in time",
        AnthropicException other => $"the Anthropic API call failed: {other.Message}",
        _ => null,
    };

    private static AgentRunResult Failed(string error) => new(AgentOutcome.Failed, null, null, null, error, RunUsage.None);

    private static AnthropicClient NewClient(LoopConfig config)
    {
        var options = new ClientOptions
        {
            ApiKey = config.AnthropicApiKey,
            // Its spans could carry the conversation (ANTHROPIC_OPEN_TELEMETRY_TRACES_CONTENT_MODE):
            // Loop keeps message text out of what it emits.
            OpenTelemetry = false,
        };
        if (config.AnthropicBaseUrl is { } baseUrl)
        {
            options.BaseUrl = baseUrl;
        }
        return new AnthropicClient(options);
    }

    public void Dispose()
    {
        if (_client.IsValueCreated)
        {
            _client.Value.Dispose();
        }
    }

    /// <summary>What one call has streamed so far, and the Claude Code lines that tell it.</summary>
    private sealed class CallState(string model, string? session)
    {
        private string? _messageId;
        private long _input;
        private long _output;
        private long _cacheWrite;
        private long _cacheRead;

        public string Model { get; private set; } = model;

        public StringBuilder Text { get; } = new();

        public string? StopReason { get; private set; }

        public string InitLine() => Line(w =>
        {
            w.WriteString("type", "system");
            w.WriteString("subtype", "init");
            w.WriteString("model", Model);
            w.WriteStartArray("tools");
            w.WriteEndArray();
        });

        /// <summary>Takes one streamed event; returns it as Claude Code's partial-message line.</summary>
        public string Read(RawMessageStreamEvent streamed)
        {
            if (streamed.TryPickStart(out var start))
            {
                _messageId = start.Message.ID;
                Model = start.Message.Model.Raw();
                _input = start.Message.Usage.InputTokens;
                _cacheWrite = start.Message.Usage.CacheCreationInputTokens ?? 0;
                _cacheRead = start.Message.Usage.CacheReadInputTokens ?? 0;
                _output = start.Message.Usage.OutputTokens;
            }
            else if (streamed.TryPickContentBlockDelta(out var block) && block.Delta.TryPickText(out var text))
            {
                Text.Append(text.Text);
            }
            else if (streamed.TryPickDelta(out var delta))
            {
                StopReason = delta.Delta.StopReason?.Raw();
                // message_delta's usage is cumulative: output always, input and cache when they changed.
                _output = delta.Usage.OutputTokens;
                _input = delta.Usage.InputTokens ?? _input;
                _cacheWrite = delta.Usage.CacheCreationInputTokens ?? _cacheWrite;
                _cacheRead = delta.Usage.CacheReadInputTokens ?? _cacheRead;
            }
            return Line(w =>
            {
                w.WriteString("type", "stream_event");
                w.WritePropertyName("event");
                streamed.Json.WriteTo(w);
                w.WriteNull("parent_tool_use_id");
            });
        }

        public RunUsage Usage(PriceTable prices, TimeSpan elapsed)
        {
            var usage = new RunUsage(_input, _output, _cacheWrite, _cacheRead, 0m, 1, (long)elapsed.TotalMilliseconds);
            return usage with { CostUsd = prices.CostOf(Model, usage) ?? 0m };
        }

        public string AssistantLine() => Line(w =>
        {
            w.WriteString("type", "assistant");
            w.WriteStartObject("message");
            w.WriteString("id", _messageId);
            w.WriteString("type", "message");
            w.WriteString("role", "assistant");
            w.WriteString("model", Model);
            w.WriteStartArray("content");
            if (Text.Length > 0)
            {
                w.WriteStartObject();
                w.WriteString("type", "text");
                w.WriteString("text", Text.ToString());
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteString("stop_reason", StopReason);
            w.WriteEndObject();
            w.WriteNull("parent_tool_use_id");
        });

        public string ResultLine(AgentOutcome outcome, string? result, RunUsage usage) => Line(w =>
        {
            w.WriteString("type", "result");
            w.WriteString("subtype", outcome == AgentOutcome.Succeeded ? "success" : "error_during_execution");
            w.WriteBoolean("is_error", outcome != AgentOutcome.Succeeded);
            w.WriteNumber("duration_ms", usage.DurationMs);
            w.WriteNumber("num_turns", usage.NumTurns);
            w.WriteString("result", result);
            w.WriteNumber("total_cost_usd", usage.CostUsd);
            w.WriteStartObject("usage");
            w.WriteNumber("input_tokens", usage.InputTokens);
            w.WriteNumber("cache_creation_input_tokens", usage.CacheCreationInputTokens);
            w.WriteNumber("cache_read_input_tokens", usage.CacheReadInputTokens);
            w.WriteNumber("output_tokens", usage.OutputTokens);
            w.WriteEndObject();
        });

        private string Line(Action<Utf8JsonWriter> write)
        {
            using var buffer = new MemoryStream();
            using (var w = new Utf8JsonWriter(buffer))
            {
                w.WriteStartObject();
                write(w);
                if (session is not null)
                {
                    w.WriteString("session_id", session);
                }
                w.WriteEndObject();
            }
            return Encoding.UTF8.GetString(buffer.ToArray());
        }
    }
}
