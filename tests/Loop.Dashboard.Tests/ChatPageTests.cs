namespace Loop.Dashboard.Tests;

using System.Text.RegularExpressions;
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
}
