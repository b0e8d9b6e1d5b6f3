namespace Loop.Claude.Tests;

using Loop.Domain.Runs;
using Xunit;

public sealed class StreamJsonReaderTests
{
    // Shaped like `claude -p --verbose --output-format stream-json` output of Claude Code 2.x:
    // init, a text block, a tool call and its result, the final text, the result with usage.
    private static readonly string[] RecordedRun =
    [
        """{"type":"system","subtype":"init","cwd":"/work/proj","session_id":"9f1c2b7e-5d4a-4e0b-8a51-2f6d3c9e7a10","tools":["Task","Bash","Read","Write","mcp__loop__schedule_task"],"mcp_servers":[{"name":"loop","status":"connected"}],"model":"claude-sonnet-4-5-20250929","permissionMode":"bypassPermissions","slash_commands":["compact","cost"],"apiKeySource":"ANTHROPIC_API_KEY","claude_code_version":"2.0.14","output_style":"default","agents":["general-purpose"],"uuid":"0c8e1d36-6a43-4b53-a3a8-6d1f5d0f4e21"}""",
        """{"type":"assistant","message":{"id":"msg_01A","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","content":[{"type":"text","text":"I'll list the files first."}],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":4,"cache_creation_input_tokens":5120,"cache_read_input_tokens":0,"output_tokens":2,"service_tier":"standard"}},"parent_tool_use_id":null,"session_id":"9f1c2b7e-5d4a-4e0b-8a51-2f6d3c9e7a10","uuid":"1b5a"}""",
        """{"type":"assistant","message":{"id":"msg_01A","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","content":[{"type":"tool_use","id":"toolu_01X","name":"Bash","input":{"command":"ls -la","description":"List files"}}],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":4,"output_tokens":90}},"parent_tool_use_id":null,"session_id":"9f1c2b7e-5d4a-4e0b-8a51-2f6d3c9e7a10","uuid":"2c6b"}""",
        """{"type":"user","message":{"role":"user","content":[{"tool_use_id":"toolu_01X","type":"tool_result","content":"total 8\nREADME.md\nsrc","is_error":false}]},"parent_tool_use_id":null,"session_id":"9f1c2b7e-5d4a-4e0b-8a51-2f6d3c9e7a10","uuid":"3d7c"}""",
        """{"type":"assistant","message":{"id":"msg_01B","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","content":[{"type":"text","text":"The project has a README and a src folder."}],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":6,"output_tokens":14}},"parent_tool_use_id":null,"session_id":"9f1c2b7e-5d4a-4e0b-8a51-2f6d3c9e7a10","uuid":"4e8d"}""",
        """{"type":"result","subtype":"success","is_error":false,"duration_ms":8123,"duration_api_ms":7650,"num_turns":3,"result":"The project has a README and a src folder.","session_id":"9f1c2b7e-5d4a-4e0b-8a51-2f6d3c9e7a10","total_cost_usd":0.0318165,"usage":{"input_tokens":14,"cache_creation_input_tokens":5120,"cache_read_input_tokens":10240,"output_tokens":106,"server_tool_use":{"web_search_requests":0,"web_fetch_requests":0},"service_tier":"standard","cache_creation":{"ephemeral_1h_input_tokens":0,"ephemeral_5m_input_tokens":5120}},"modelUsage":{"claude-sonnet-4-5-20250929":{"inputTokens":14,"outputTokens":106,"cacheReadInputTokens":10240,"cacheCreationInputTokens":5120,"webSearchRequests":0,"costUSD":0.0318165,"contextWindow":200000}},"permission_denials":[],"uuid":"5f9e"}""",
    ];

    [Fact]
    public void A_recorded_run_gives_session_model_reply_and_usage()
    {
        var reader = new StreamJsonReader();
        foreach (var line in RecordedRun)
        {
            Assert.True(reader.Feed(line));
        }

        var s = reader.Summary;
        Assert.Equal("9f1c2b7e-5d4a-4e0b-8a51-2f6d3c9e7a10", s.SessionId);
        Assert.Equal("claude-sonnet-4-5-20250929", s.Model);
        Assert.Equal("The project has a README and a src folder.", s.ResultText);
        Assert.False(s.IsError);
        Assert.True(s.HasResult);
        Assert.Equal("success", s.Subtype);
        Assert.Equal(new RunUsage(14, 106, 5120, 10240, 0.0318165m, 3, 8123), s.Usage);
    }

    [Fact]
    public void Text_and_tool_calls_are_reported_as_they_arrive()
    {
        var reader = new StreamJsonReader();
        var seen = new List<string>();
        reader.AssistantText += t => seen.Add("text:" + t);
        reader.ToolUse += t => seen.Add($"tool:{t.Id}:{t.Name}:{t.InputJson}");

        reader.Feed(RecordedRun[0]);
        Assert.Equal("9f1c2b7e-5d4a-4e0b-8a51-2f6d3c9e7a10", reader.SessionId);
        Assert.Empty(seen);

        reader.Feed(RecordedRun[1]);
        Assert.Equal(["text:I'll list the files first."], seen);

        foreach (var line in RecordedRun.Skip(2))
        {
            reader.Feed(line);
        }
        Assert.Equal(
            ["text:I'll list the files first.",
             """tool:toolu_01X:Bash:{"command":"ls -la","description":"List files"}""",
             "text:The project has a README and a src folder."],
            seen);
    }

    [Fact]
    public void Blank_garbage_and_unknown_lines_are_skipped()
    {
        var reader = new StreamJsonReader();

        Assert.False(reader.Feed(""));
        Assert.False(reader.Feed("   "));
        Assert.False(reader.Feed(null));
        Assert.False(reader.Feed("npm WARN deprecated something"));
        Assert.False(reader.Feed("{not json"));
        Assert.False(reader.Feed("""{"no_type":1}"""));
        Assert.False(reader.Feed("[1,2,3]"));
        Assert.True(reader.Feed("""{"type":"rate_limit_event","info":{}}"""));
        Assert.True(reader.Feed("""{"type":"assistant","message":"unexpected shape"}"""));
        foreach (var line in RecordedRun)
        {
            reader.Feed(line);
            reader.Feed("\u001b[2K stray terminal output");
        }

        Assert.Equal("The project has a README and a src folder.", reader.Summary.ResultText);
        Assert.Equal(106, reader.Summary.Usage.OutputTokens);
    }

    [Fact]
    public void Without_a_result_the_reply_is_the_assistant_text_and_the_run_is_an_error()
    {
        var reader = new StreamJsonReader();
        foreach (var line in RecordedRun.Take(5))
        {
            reader.Feed(line);
        }

        var s = reader.Summary;
        Assert.False(s.HasResult);
        Assert.True(s.IsError);
        Assert.Null(s.Subtype);
        Assert.Equal("I'll list the files first.\nThe project has a README and a src folder.", s.ResultText);
        Assert.Equal("9f1c2b7e-5d4a-4e0b-8a51-2f6d3c9e7a10", s.SessionId);
        Assert.Equal(RunUsage.None, s.Usage);
    }

    [Fact]
    public void An_error_result_is_reported_with_its_message_and_subtype()
    {
        var reader = new StreamJsonReader();
        reader.Feed(RecordedRun[0]);
        reader.Feed("""{"type":"result","subtype":"success","is_error":true,"duration_ms":412,"duration_api_ms":0,"num_turns":1,"result":"Invalid API key · Please run /login","session_id":"9f1c2b7e-5d4a-4e0b-8a51-2f6d3c9e7a10","total_cost_usd":0,"usage":{"input_tokens":0,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":0}}""");

        var s = reader.Summary;
        Assert.True(s.IsError);
        Assert.Equal("Invalid API key · Please run /login", s.ResultText);
        Assert.Equal(412, s.Usage.DurationMs);
    }

    [Fact]
    public void An_error_result_without_text_falls_back_to_its_errors()
    {
        var reader = new StreamJsonReader();
        reader.Feed("""{"type":"result","subtype":"error_max_turns","is_error":true,"duration_ms":10,"num_turns":5,"session_id":"s1","total_cost_usd":1.5e-7,"usage":{"input_tokens":1,"output_tokens":2},"errors":["Reached maximum number of turns (5)"]}""");

        var s = reader.Summary;
        Assert.Equal("error_max_turns", s.Subtype);
        Assert.Equal("Reached maximum number of turns (5)", s.ResultText);
        Assert.Equal("s1", s.SessionId);
        Assert.Equal(0.00000015m, s.Usage.CostUsd);
        Assert.Equal(5, s.Usage.NumTurns);
    }
}
