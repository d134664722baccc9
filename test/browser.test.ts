// The real-browser infrastructure (test/browser.ts) works on the runtime running this suite: a
// headless Chromium draws on a canvas and delivers key presses. With no Chromium the suite fails.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { BROWSER_MISSING, openBrowser } from './browser.js';

const PAGE = `<!doctype html>
<canvas id=c width=10 height=10></canvas>
<script>
  const ctx = document.getElementById('c').getContext('2d');
  ctx.fillStyle = '#f00';
  ctx.fillRect(3, 4, 1, 1);
  window.keys = [];
  addEventListener('keydown', (e) => window.keys.push(e.key));
</script>`;

test('a page draws a red pixel on a canvas and reads it back; a key press reaches a keydown listener', async () => {
  // Opened in the test, not in test.before: uvu 0.5.6 drops an error thrown by a hook.
  const browser = await openBrowser();
  if (browser === null) return assert.unreachable(BROWSER_MISSING);
  try {
    const page = await browser.newPage();
    await page.setContent(PAGE);
    assert.equal(page.viewportSize(), { width: 1280, height: 800 });
    const pixel = await page.evaluate(() => {
      const canvas = document.getElementById('c') as HTMLCanvasElement;
      return Array.from(canvas.getContext('2d')!.getImageData(3, 4, 1, 1).data);
    });
    assert.equal(pixel, [255, 0, 0, 255], 'the pixel drawn red reads back red');
    const blank = await page.evaluate(() => {
      const canvas = document.getElementById('c') as HTMLCanvasElement;
      return Array.from(canvas.getContext('2d')!.getImageData(0, 0, 1, 1).data);
    });
    assert.equal(blank, [0, 0, 0, 0], 'a pixel not drawn stays transparent');
    await page.keyboard.press('ArrowRight');
    assert.equal(await page.evaluate(() => (window as unknown as { keys: string[] }).keys), ['ArrowRight']);
  } finally {
    await browser.close();
  }
});

test.run();
