namespace Loop.Dashboard.Tests;

using System.Net;
using System.Net.Http.Json;
using System.Text.RegularExpressions;
using Loop.Testing;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

[Collection(DashboardCollection.Name)]
public sealed class ChatPageTests(DashboardFixture fixture)
{
    [Fact]
    public async Task A_message_sent_from_a_new_channel_gets_its_reply_streamed_in_without_a_reload()
    {
        await using var session = await fixture.OpenAsync();
        await session.RunAsync(async page =>
        {
            var name = "chat-" + Guid.NewGuid().ToString("N")[..8];
            await Ui.GoToAsync(page, "chat", "Chat");
            // The form may sit folded behind a "New channel" disclosure, which a user opens first.
            await Expect(Ui.Field(page, "Channel name")).ToBeAttachedAsync();
            if (!await Ui.Field(page, "Channel name").IsVisibleAsync())
            {
                await page.GetByText("New channel", new() { Exact = true }).ClickAsync();
            }
            await Ui.Field(page, "Channel name").FillAsync(name);
            await Ui.Button(page, "Create channel").ClickAsync();

            // The new channel is registered and selected.
            var channelSelect = page.GetByRole(AriaRole.Combobox, new() { Name = "Channel", Exact = true });
            await Expect(channelSelect.Locator("option:checked")).ToHaveTextAsync(name);
            var channel = (await fixture.Daemon.GetArrayAsync("/api/channels")).Single(c => (string)c!["name"]! == name)!;
            await Expect(channelSelect).ToHaveValueAsync((string)channel["id"]!);

            // Anything that reloads or navigates the page drops this.
            await page.EvaluateAsync("() => { window.__marker = 'same page'; }");
            var message = page.GetByRole(AriaRole.Textbox, new() { Name = "Message", Exact = true });
            await message.FillAsync("[[reply first part]] [[sleep 3]] [[reply the double says hello]]");
            await Ui.Button(page, "Send").ClickAsync();

            var conversation = page.GetByRole(AriaRole.Log, new() { Name = "Conversation", Exact = true });
            await Expect(conversation.Locator("article[data-role=user]")).ToContainTextAsync("[[sleep 3]]");
            // The run is under way: cancellable, with a status line, and its output streams in.
            await Expect(Ui.Button(page, "Cancel run")).ToBeVisibleAsync(new() { Timeout = Ui.RunTimeout });
            await Expect(page.GetByTestId("run-status")).ToHaveTextAsync(new Regex("queued|running…"), new() { Timeout = Ui.RunTimeout });
            await Expect(conversation.Locator("article[data-role=streaming]")).ToContainTextAsync("first part", new() { Timeout = Ui.RunTimeout });

            var reply = conversation.Locator("article[data-role=assistant]");
            await Expect(reply).ToContainTextAsync("the double says hello", new() { Timeout = Ui.RunTimeout });
            await Expect(reply).ToContainTextAsync("first part");
            await Expect(reply).ToHaveCountAsync(1);
            await Expect(conversation.Locator("article[data-role=streaming]")).ToHaveCountAsync(0);
            await Expect(page.GetByTestId("run-status")).ToBeHiddenAsync();
            await Expect(Ui.Button(page, "Cancel run")).ToBeHiddenAsync();
            Assert.Equal("same page", await page.EvaluateAsync<string?>("() => window.__marker"));

            // What the page shows is what the daemon stored.
            var stored = await fixture.Daemon.GetArrayAsync($"/api/channels/{channel["id"]}/messages");
            Assert.Contains(stored, m => (string)m!["role"]! == "agent" && ((string)m["content"]!).Contains("the double says hello"));
            await Screenshots.SaveAsync(page, "chat");
        });
    }

    [Fact]
    public async Task A_direct_channels_reply_streams_in_word_by_word_and_then_stands_as_the_reply()
    {
        using var created = await fixture.Daemon.Http.PostAsJsonAsync("/api/channels", new { name = "direct-" + Guid.NewGuid().ToString("N")[..8], mode = "direct" });
        var channelId = (string)(await LoopDaemon.ReadObjectAsync(created, HttpStatusCode.Created))["id"]!;
        await using var session = await fixture.OpenAsync();
        await session.RunAsync(async page =>
        {
            await Ui.GoToAsync(page, $"chat/{channelId}", "Chat");
            await Expect(page.GetByRole(AriaRole.Combobox, new() { Name = "Channel", Exact = true })).ToHaveValueAsync(channelId);
            var held = fixture.Anthropic.HoldNextStream();
            fixture.Anthropic.Enqueue(new AnthropicAnswer.Reply("Streaming straight from the API.", Chunks: 3));

            var message = page.GetByRole(AriaRole.Textbox, new() { Name = "Message", Exact = true });
            await message.FillAsync("Say something");
            await Ui.Button(page, "Send").ClickAsync();

            // The first words (the first of three deltas) are on the page while the rest is still being written.
            var conversation = page.GetByRole(AriaRole.Log, new() { Name = "Conversation", Exact = true });
            var working = conversation.Locator("article[data-role=streaming] .text");
            await held.Arrived.WaitAsync(TimeSpan.FromSeconds(30));
            await Expect(working).ToHaveTextAsync("Streaming s");
            held.Release();

            var reply = conversation.Locator("article[data-role=assistant]");
            await Expect(reply.Locator(".text")).ToHaveTextAsync("Streaming straight from the API.");
            await Expect(conversation.Locator("article[data-role=streaming]")).ToHaveCountAsync(0);
        });
    }

    [Fact]
    public async Task The_agent_working_bubble_stays_below_the_message_it_answers_when_that_message_arrives_late()
    {
        var channelId = (string)(await fixture.Daemon.CreateChannelAsync())["id"]!;
        // Holds the page's fetch of new messages until the run's output is on screen: the order in
        // which a message sent elsewhere (a script, a chat platform) and its run reach the page.
        var messagesArrive = new TaskCompletionSource();
        await using var session = await fixture.OpenAsync();
        try
        {
            await session.RunAsync(async page =>
            {
                await Ui.GoToAsync(page, $"chat/{channelId}", "Chat");
                await Expect(page.GetByRole(AriaRole.Combobox, new() { Name = "Channel", Exact = true })).ToHaveValueAsync(channelId);
                await Expect(Ui.LiveStatus(page)).ToHaveTextAsync("live");
                await page.RouteAsync(new Regex(@"/messages\?after="), async route =>
                {
                    await messagesArrive.Task;
                    await route.ContinueAsync();
                });

                await fixture.Daemon.PostMessageAsync(channelId, "[[reply first part]] [[sleep 3]] [[reply the double says hello]]");
                var conversation = page.GetByRole(AriaRole.Log, new() { Name = "Conversation", Exact = true });
                var working = conversation.Locator("article[data-role=streaming]");
                await Expect(working).ToContainTextAsync("first part", new() { Timeout = Ui.RunTimeout });
                messagesArrive.SetResult();

                var question = conversation.Locator("article[data-role=user]");
                await Expect(question).ToContainTextAsync("[[sleep 3]]");
                await Expect(conversation.Locator("article[data-role=user] ~ article[data-role=streaming]")).ToHaveCountAsync(1);
                var (questionBox, workingBox) = (await question.BoundingBoxAsync(), await working.BoundingBoxAsync());
                Assert.True(questionBox!.Y + questionBox.Height <= workingBox!.Y, $"the question ({questionBox.Y}) is drawn below the agent at work ({workingBox.Y})");

                // The reply takes the bubble's place, below the question too.
                await Expect(working).ToHaveCountAsync(0, new() { Timeout = Ui.RunTimeout });
                await Expect(conversation.Locator("article[data-role=user] ~ article[data-role=assistant]")).ToContainTextAsync("the double says hello");
            });
        }
        finally
        {
            messagesArrive.TrySetResult();
        }
    }

    [Fact]
    public async Task Channels_of_the_same_name_show_their_directories_in_the_picker()
    {
        var name = "twin-" + Guid.NewGuid().ToString("N")[..8];
        // Outside the Loop home: no project may lie inside it.
        var dirs = new[] { Directory.CreateTempSubdirectory(name + "-a-").FullName, Directory.CreateTempSubdirectory(name + "-b-").FullName };
        foreach (var dir in dirs)
        {
            using var created = await fixture.Daemon.Http.PostAsJsonAsync("/api/channels", new { name, dir_path = dir });
            await LoopDaemon.ReadObjectAsync(created, HttpStatusCode.Created);
        }

        await using var session = await fixture.OpenAsync();
        await session.RunAsync(async page =>
        {
            await Ui.GoToAsync(page, "chat", "Chat");
            var twins = page.GetByRole(AriaRole.Combobox, new() { Name = "Channel", Exact = true }).Locator("option").Filter(new() { HasText = name });
            await Expect(twins).ToHaveCountAsync(2);
            foreach (var dir in dirs)
            {
                await Expect(twins.Filter(new() { HasText = dir })).ToHaveCountAsync(1);
            }
        });
    }
}
